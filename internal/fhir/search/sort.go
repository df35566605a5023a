package search

import (
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// sortTime formats a date so that byte order is time order.
const sortTime = "2006-01-02T15:04:05.000000"

// SortKey returns the key by which res sorts under so, a key of a
// parameter (not _id or _lastUpdated, which the caller orders by
// itself), and false when res has no value for it. Keys compare as
// bytes. A resource with several values sorts by its lowest ascending
// and by its highest descending (R4 §3.1.1.4.9):
//
//   - string: the normalised value (case and accents folded, as
//     searches match), then the value as written;
//   - token: the code, then the system;
//   - reference: the reference, "Type/id";
//   - uri: the uri as written;
//   - date: the start of the value's range ascending, its end
//     descending.
//
// The keys hold the resource's values, which may be PHI: they never
// leave the process.
func (r *Registry) SortKey(res fhir.Resource, so SortSpec) (string, bool) {
	p, ok := r.Lookup(res.Type(), so.Param)
	if !ok {
		return "", false
	}
	var (
		best  string
		found bool
	)
	for _, it := range evaluate(p.expr, res) {
		vals, err := p.values(nil, it)
		if err != nil {
			continue // an impossible date has no place in the order
		}
		for _, v := range vals {
			if v.Param != p.Code {
				continue // :identifier, :text and :of-type columns
			}
			k, ok := sortKeyOf(v, so.Desc)
			if !ok {
				continue
			}
			if !found || (so.Desc && k > best) || (!so.Desc && k < best) {
				best, found = k, true
			}
		}
	}
	return best, found
}

func sortKeyOf(v Value, desc bool) (string, bool) {
	switch v.Type {
	case String:
		return Normalize(v.Str) + "\x00" + v.Str, v.Str != ""
	case Token:
		return v.Code + "\x00" + v.System, v.Code != ""
	case Reference:
		return v.Ref, v.Ref != ""
	case URI:
		return v.Str, v.Str != ""
	case Date:
		t := v.Lo
		if desc {
			t = v.Hi
		}
		return t.UTC().Format(sortTime), !t.Equal(time.Time{})
	}
	return "", false
}
