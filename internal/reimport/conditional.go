package reimport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// TagSystem is the system of the meta.tag that carries a resource's
// content hash.
const TagSystem = "https://phivault.dev/fhir/CodeSystem/import-hash"

// byIdentifier are the types matched on their identifier: people and
// the directory (organisations, locations, roles), whose business
// identifiers are stable across exports and bundles, and which phivault
// searches by identifier. Every other type matches on its content hash.
var byIdentifier = map[string]bool{
	"Patient": true, "Practitioner": true, "PractitionerRole": true, "Organization": true, "Location": true,
}

// ErrNotBundle is returned for JSON that is not a Bundle.
var ErrNotBundle = errors.New("not a Bundle")

// Conditional returns bundle with every create made conditional (see the
// package documentation). Numbers keep their text.
func Conditional(bundle []byte) ([]byte, error) {
	r, err := Rewrite(bundle)
	if err != nil {
		return nil, err
	}
	return r.Full()
}

// Rewritten is a Bundle made ready to import.
type Rewritten struct {
	full func() ([]byte, error)
	// Fresh, for a transaction that creates one Patient with an
	// identifier, has only the people and directory resources
	// conditional: the same outcome as Full when that Patient is not
	// stored (a transaction is stored whole or not at all, so nothing of
	// a patient not stored is), and a faster import, the server checking
	// no clinical resource. Nil otherwise.
	Fresh []byte
	// Probe is the search ("Patient?identifier=system|value") whose
	// empty answer makes Fresh the one to send; "" when Fresh is nil.
	Probe string
}

// Full returns the Bundle with every create conditional: importing it
// again creates nothing. It is encoded on the first call only (a new
// patient's Bundle goes as Fresh, and its Full is never encoded).
func (r *Rewritten) Full() ([]byte, error) { return r.full() }

// Rewrite returns bundle made conditional both ways (Rewritten).
func Rewrite(bundle []byte) (Rewritten, error) {
	dec := json.NewDecoder(bytes.NewReader(bundle))
	dec.UseNumber()
	var b map[string]any
	if err := dec.Decode(&b); err != nil {
		return Rewritten{}, err
	}
	if b["resourceType"] != "Bundle" {
		return Rewritten{}, ErrNotBundle
	}
	entries, _ := b["entry"].([]any)
	seen := map[string]int{}
	type hashed struct {
		req, res map[string]any
		hash     string
	}
	var clinical []hashed
	patients, probe := 0, ""
	for _, x := range entries {
		e, ok := x.(map[string]any)
		if !ok {
			continue
		}
		req, _ := e["request"].(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if req == nil || res == nil || req["method"] != "POST" {
			continue
		}
		typ, _ := res["resourceType"].(string)
		if typ == "Patient" {
			patients++
		}
		if _, has := req["ifNoneExist"]; has {
			continue
		}
		if sys, val, ok := firstIdentifier(res); ok && byIdentifier[typ] {
			q := url.Values{"identifier": {escape(sys) + "|" + escape(val)}}.Encode()
			req["ifNoneExist"] = q
			if typ == "Patient" {
				probe = "Patient?" + q
			}
			continue
		}
		fullURL, _ := e["fullUrl"].(string)
		if id, _ := res["id"].(string); fullURL == "" && id == "" {
			// No identity of its own in the file: a hash of its content
			// alone would let a reader who sees the stored resource but
			// a masked element confirm a guess of it. Left as it is: a
			// second import creates it again (ADR 0037).
			continue
		}
		h, err := contentHash(fullURL, res)
		if err != nil {
			return Rewritten{}, err
		}
		seen[h]++
		if n := seen[h]; n > 1 {
			sum := sha256.Sum256([]byte(h + "#" + strconv.Itoa(n)))
			h = hex.EncodeToString(sum[:16])
		}
		clinical = append(clinical, hashed{req, res, h})
	}
	// Every clinical create carries its tag, so that a later import of
	// the same file finds it; Full also has the conditions.
	for _, c := range clinical {
		addTag(c.res, c.hash)
	}
	var full []byte
	var fullErr error
	var once sync.Once
	r := Rewritten{full: func() ([]byte, error) {
		once.Do(func() {
			for _, c := range clinical {
				c.req["ifNoneExist"] = url.Values{"_tag": {TagSystem + "|" + c.hash}}.Encode()
			}
			full, fullErr = encode(b)
		})
		return full, fullErr
	}}
	if b["type"] == "transaction" && patients == 1 && probe != "" {
		var err error
		if r.Fresh, err = encode(b); err != nil {
			return Rewritten{}, err
		}
		r.Probe = probe
	}
	return r, nil
}

func encode(b map[string]any) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// firstIdentifier returns the system and value of res's first
// identifier that has both.
func firstIdentifier(res map[string]any) (system, value string, ok bool) {
	ids, _ := res["identifier"].([]any)
	for _, x := range ids {
		id, _ := x.(map[string]any)
		s, _ := id["system"].(string)
		v, _ := id["value"].(string)
		if s != "" && v != "" {
			return s, v, true
		}
	}
	return "", "", false
}

// contentHash is the SHA-256 (first 128 bits, hex) of the entry's
// fullUrl and res as canonical JSON (keys sorted, numbers as written).
// The file's fullUrl and id, and its references to other entries'
// fullUrls, are not stored (the server assigns ids and rewrites the
// references): they make the hash unguessable from what is stored.
func contentHash(fullURL string, res map[string]any) (string, error) {
	var buf bytes.Buffer
	buf.WriteString(fullURL)
	buf.WriteByte('\n')
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:16]), nil
}

func addTag(res map[string]any, code string) {
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, map[string]any{"system": TagSystem, "code": code})
}

// escape escapes a token search value's reserved characters (FHIR R4
// search, "Escaping search parameters").
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, `,`, `\,`, `$`, `\$`).Replace(s)
}
