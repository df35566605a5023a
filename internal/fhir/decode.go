package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Default limits, used for each zero field of [Limits].
const (
	// DefaultMaxBytes caps a request body. 16 MiB holds the largest
	// Synthea patient bundle seen (3.8 MB) four times over while keeping
	// the decoded tree (roughly 5-10x the JSON size) well under 200 MB.
	DefaultMaxBytes int64 = 16 << 20

	// DefaultMaxDepth caps JSON nesting. Real R4 content is shallow:
	// Synthea transaction bundles reach depth 11, and the deepest standard
	// structures (Questionnaire items nested a dozen levels inside a
	// contained resource inside a Bundle) stay under 40. 64 leaves room
	// for those while bounding the recursion of the decoder, the schema
	// validator and the FHIRPath evaluator against hostile input.
	DefaultMaxDepth = 64

	// DefaultMaxEntries caps Bundle.entry. 10,000 entries is more than a
	// Synthea lifetime record (under 1,000) and bounds the work one
	// transaction can demand (validation, index terms, one DEK per patient).
	DefaultMaxEntries = 10_000
)

// Limits bounds the work [Decode] does for one body. The zero value of a
// field means its default constant; negative values are treated as zero.
type Limits struct {
	MaxBytes   int64 // body size in bytes; default DefaultMaxBytes
	MaxDepth   int   // nesting of objects and arrays; default DefaultMaxDepth
	MaxEntries int   // entries of a Bundle; default DefaultMaxEntries
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Decode reads one FHIR resource in JSON from r, enforcing lim.
//
// It reads at most lim.MaxBytes+1 bytes (more is [ErrTooLarge]), checks
// nesting depth in a streaming pre-scan before building any tree
// ([ErrTooDeep]), and rejects with [ErrInvalid]: invalid UTF-8, malformed
// JSON, duplicate object keys, anything after the first value, a top level
// that is not an object, and a missing or non-string resourceType. A
// resourceType that is not an R4 type is [ErrUnknownType]. A Bundle with
// more than lim.MaxEntries entries is [ErrTooLarge]. Numbers are kept as
// [json.Number], so decimals keep their precision.
//
// Decode does not validate against the schema: see [Validator]. Error
// messages never contain bytes from the body (only offsets and names), and
// an error from r itself is wrapped unchanged.
func Decode(r io.Reader, lim Limits) (Resource, error) {
	lim = lim.withDefaults()
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading resource: %w", err)
	}
	if int64(len(body)) > lim.MaxBytes {
		return nil, fmt.Errorf("reading resource: body exceeds %d bytes: %w", lim.MaxBytes, ErrTooLarge)
	}
	return decodeBytes(body, lim)
}

func decodeBytes(body []byte, lim Limits) (Resource, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("decoding resource: body is not valid UTF-8: %w", ErrInvalid)
	}
	if err := prescan(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// The pre-scan accepted the syntax, so this is unexpected; do not
		// wrap the json error, whose text may quote input.
		return nil, fmt.Errorf("decoding resource: malformed JSON: %w", ErrInvalid)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decoding resource: top level must be a JSON object: %w", ErrInvalid)
	}
	res := Resource(obj)
	rt, ok := obj["resourceType"].(string)
	switch {
	case !ok && obj["resourceType"] == nil:
		return nil, fmt.Errorf("decoding resource: missing resourceType: %w", ErrInvalid)
	case !ok:
		return nil, fmt.Errorf("decoding resource: resourceType must be a string: %w", ErrInvalid)
	case !IsR4Type(rt):
		// The name is client-chosen: do not echo it.
		return nil, fmt.Errorf("decoding resource: resourceType is not an R4 resource type: %w", ErrUnknownType)
	}
	if rt == "Bundle" {
		if entries, ok := obj["entry"].([]any); ok && len(entries) > lim.MaxEntries {
			return nil, fmt.Errorf("decoding bundle: more than %d entries: %w", lim.MaxEntries, ErrTooLarge)
		}
	}
	return res, nil
}

// prescan walks the token stream once: it bounds nesting depth before any
// tree is built, rejects duplicate keys (RFC 8259 leaves them undefined;
// FHIR JSON forbids them, and a validator and a reader picking different
// duplicates is a classic smuggling bug) and rejects trailing data.
func prescan(body []byte, maxDepth int) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		obj  bool
		keys map[string]struct{}
		key  bool // the next token in this object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return fmt.Errorf("decoding resource: unexpected end of JSON: %w", ErrInvalid)
			}
			return fmt.Errorf("decoding resource: empty body: %w", ErrInvalid)
		}
		if err != nil {
			return syntaxError(dec, err)
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top >= 0 && stack[top].obj {
					stack[top].key = true // this value completes a member
				}
				if len(stack)+1 > maxDepth {
					return fmt.Errorf("decoding resource: nesting deeper than %d at byte %d: %w", maxDepth, dec.InputOffset(), ErrTooDeep)
				}
				stack = append(stack, frame{obj: d == '{', key: true})
			case '}', ']':
				stack = stack[:top]
			}
		} else if top >= 0 && stack[top].obj {
			if stack[top].key {
				k, _ := tok.(string)
				if stack[top].keys == nil {
					stack[top].keys = make(map[string]struct{}, 8)
				}
				if _, dup := stack[top].keys[k]; dup {
					return fmt.Errorf("decoding resource: duplicate object key at byte %d: %w", dec.InputOffset(), ErrInvalid)
				}
				stack[top].keys[k] = struct{}{}
				stack[top].key = false
			} else {
				stack[top].key = true
			}
		}
		if len(stack) == 0 {
			break
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("decoding resource: data after the JSON value: %w", ErrInvalid)
	}
	return nil
}

// syntaxError reports a JSON syntax error by offset only: the standard
// library's message quotes the offending character.
func syntaxError(dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("decoding resource: malformed JSON at byte %d: %w", se.Offset, ErrInvalid)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("decoding resource: unexpected end of JSON: %w", ErrInvalid)
	}
	return fmt.Errorf("decoding resource: malformed JSON at byte %d: %w", dec.InputOffset(), ErrInvalid)
}
