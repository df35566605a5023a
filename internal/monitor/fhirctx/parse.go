package fhirctx

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/monitor"
)

// Limits bound what a context Bundle may hold.
type Limits struct {
	MaxEntries  int   // entries in the Bundle (default 20,000,000)
	MaxResource int64 // bytes of one entry (default 4 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 20_000_000
	}
	if l.MaxResource <= 0 {
		l.MaxResource = 4 << 20
	}
	return l
}

// Stats count what Parse read.
type Stats struct {
	Entries int
	ByType  map[string]int // resources read, by type
	Skipped int            // entries of other types, or without a resource
	// Unreadable counts entries of the types read whose fields did not
	// have the shape expected (skipped, so that a resource the parser
	// misreads never refuses a whole context).
	Unreadable int
}

// wanted are the resource types the directory is built from.
var wanted = map[string]bool{"Organization": true, "Practitioner": true, "PractitionerRole": true, "Patient": true,
	"Encounter": true, "CareTeam": true, "ServiceRequest": true, "Claim": true, "Account": true}

// ErrNotBundle is returned when the input is not a FHIR Bundle.
var ErrNotBundle = errors.New("the context is not a FHIR Bundle")

// Parse reads a context Bundle from r with default limits.
func Parse(r io.Reader) (*monitor.Directory, error) {
	d, _, err := ParseWith(r, Limits{})
	return d, err
}

// ParseWith reads a context Bundle from r.
func ParseWith(r io.Reader, lim Limits) (*monitor.Directory, Stats, error) {
	lim = lim.withDefaults()
	b := newBuilder()
	st := Stats{ByType: map[string]int{}}
	dec := json.NewDecoder(skipBOM(r))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, st, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	sawType := false
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return nil, st, fmt.Errorf("%w: %v", ErrNotBundle, err)
		}
		switch key {
		case "resourceType":
			var rt string
			if err := dec.Decode(&rt); err != nil || rt != "Bundle" {
				return nil, st, fmt.Errorf("%w: resourceType is not \"Bundle\"", ErrNotBundle)
			}
			sawType = true
		case "entry":
			if err := expectDelim(dec, '['); err != nil {
				return nil, st, fmt.Errorf("reading Bundle.entry: %v", err)
			}
			for dec.More() {
				if st.Entries >= lim.MaxEntries {
					return nil, st, fmt.Errorf("the context Bundle has more than %d entries", lim.MaxEntries)
				}
				var e entry
				raw, err := decodeBounded(dec, lim.MaxResource)
				if err != nil {
					return nil, st, fmt.Errorf("reading Bundle.entry[%d]: %w", st.Entries, err)
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					return nil, st, fmt.Errorf("reading Bundle.entry[%d]: %s", st.Entries, jsonProblem(err))
				}
				var k kind
				if len(e.Resource) > 0 {
					if err := json.Unmarshal(e.Resource, &k); err != nil {
						return nil, st, fmt.Errorf("reading Bundle.entry[%d].resource: %s", st.Entries, jsonProblem(err))
					}
				}
				var res resource
				if wanted[k.ResourceType] {
					if err := json.Unmarshal(e.Resource, &res); err != nil {
						st.Unreadable++
						st.Entries++
						continue
					}
					if res.ID == "" {
						res.ID = idFromFullURL(e.FullURL, k.ResourceType)
					}
				}
				typ, err := b.add(e.FullURL, res)
				if err != nil {
					return nil, st, fmt.Errorf("reading Bundle.entry[%d]: %w", st.Entries, err)
				}
				if typ == "" {
					st.Skipped++
				} else {
					st.ByType[typ]++
				}
				st.Entries++
			}
			if _, err := dec.Token(); err != nil {
				return nil, st, fmt.Errorf("reading Bundle.entry: %s", jsonProblem(err))
			}
		default:
			if _, err := decodeBounded(dec, lim.MaxResource); err != nil {
				return nil, st, fmt.Errorf("reading Bundle.%s: %w", safeKey(key), err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, st, fmt.Errorf("%w: %s", ErrNotBundle, jsonProblem(err))
	}
	if !sawType {
		return nil, st, fmt.Errorf("%w: no resourceType", ErrNotBundle)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, st, fmt.Errorf("%w: data after the Bundle", ErrNotBundle)
	}
	return b.finish(), st, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return errors.New(jsonProblem(err))
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q", string(want))
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", errors.New(jsonProblem(err))
	}
	k, ok := t.(string)
	if !ok {
		return "", errors.New("expected an object key")
	}
	return k, nil
}

// decodeBounded reads the next JSON value, refusing one over max bytes.
func decodeBounded(dec *json.Decoder, max int64) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errors.New(jsonProblem(err))
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("a value of %d bytes is over the limit of %d", len(raw), max)
	}
	return raw, nil
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case strings.Contains(err.Error(), "exceeded max depth"):
		return "the JSON is nested too deeply"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("a %s where %s was expected (field %s)", te.Value, te.Type, safeKey(te.Field))
	default:
		return "invalid JSON"
	}
}

// safeKey keeps a field name printable and short for an error message.
func safeKey(k string) string {
	if len(k) > 40 {
		k = k[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, k)
}

// parseTime reads a FHIR date or dateTime; end asks for the end of its
// precision. The zero time means absent or unreadable (an open bound).
func parseTime(s string, end bool) time.Time {
	t, _ := fhir.ParseDateTime(s, end)
	return t
}

// idFromFullURL gives a resource without an id (a transaction Bundle's
// new resource) the id its fullUrl names: a urn:uuid's uuid, or the id
// of a RESTful URL of its type; "" otherwise.
func idFromFullURL(fullURL, typ string) string {
	if u, ok := strings.CutPrefix(fullURL, "urn:uuid:"); ok && validID(u) {
		return u
	}
	if i := strings.LastIndex(fullURL, "/"+typ+"/"); i >= 0 {
		if id := fullURL[i+len(typ)+2:]; validID(id) {
			return id
		}
	}
	return ""
}

// skipBOM drops a UTF-8 byte order mark at the start of r (some
// exporters write one; JSON forbids it, FHIR servers accept it).
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	return br
}
