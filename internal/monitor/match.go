package monitor

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Demographic matching: the detectors that compare a patient with the
// user (self, family, neighbour) and with the workforce (co-worker,
// workforce). Names and addresses are compared after normalisation
// (case, accents, punctuation, common street abbreviations), never
// fuzzily: a fuzzy match on names raises false alerts on common names,
// and the strong weights of these detectors need exact evidence.

// demographics is the normalised form of a person or patient.
type demographics struct {
	family string
	given  string // first given name
	birth  string
	addrs  []normAddress
}

type normAddress struct {
	line   string // the full normalised line
	street string // the line without tokens holding digits (house, flat numbers)
	city   string
	postal string
}

func demographicsOf(family string, given []string, birth string, addrs []Address) demographics {
	d := demographics{family: normText(family), birth: strings.TrimSpace(birth)}
	if len(given) > 0 {
		d.given = normText(given[0])
	}
	for _, a := range addrs {
		n := normAddress{line: normLine(a.Line), city: normText(a.City), postal: normPostal(a.PostalCode)}
		n.street = streetOf(n.line)
		if n.line == "" && n.postal == "" {
			continue
		}
		d.addrs = append(d.addrs, n)
	}
	return d
}

var streetWords = map[string]string{
	"st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
	"blvd": "boulevard", "dr": "drive", "ln": "lane", "ct": "court", "pl": "place",
	"sq": "square", "hwy": "highway", "pkwy": "parkway", "ter": "terrace", "cres": "crescent",
	"apt": "apartment", "no": "number", "n": "north", "s": "south", "e": "east", "w": "west",
}

// normText lowercases, strips accents and punctuation, and collapses
// spaces.
func normText(s string) string {
	s = norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
		default:
			space = true
		}
	}
	return b.String()
}

func normLine(s string) string {
	f := strings.Fields(normText(s))
	for i, w := range f {
		if x, ok := streetWords[w]; ok {
			f[i] = x
		}
	}
	return strings.Join(f, " ")
}

func normPostal(s string) string {
	return strings.ReplaceAll(normText(s), " ", "")
}

// streetOf drops the tokens that hold a digit (house and flat numbers):
// what two neighbours share.
func streetOf(line string) string {
	f := strings.Fields(line)
	out := f[:0:0]
	for _, w := range f {
		if strings.IndexFunc(w, unicode.IsDigit) >= 0 || w == "apartment" || w == "number" || w == "unit" || w == "flat" {
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// addressMatch is how close two sets of addresses are.
type addressMatch int

const (
	addrNone   addressMatch = iota
	addrPostal              // same postal code only
	addrStreet              // same street (and town), other house
	addrLine                // same address line (and town)
)

// samePlace reports whether two addresses are in the same town: the
// same postal code or city when both are known, else assumed.
func samePlace(a, b normAddress) bool {
	if a.postal != "" && b.postal != "" {
		return a.postal == b.postal
	}
	if a.city != "" && b.city != "" {
		return a.city == b.city
	}
	return true
}

func compareAddresses(as, bs []normAddress) addressMatch {
	best := addrNone
	for _, a := range as {
		for _, b := range bs {
			m := addrNone
			switch {
			case a.line != "" && a.line == b.line && samePlace(a, b):
				m = addrLine
			case a.street != "" && a.street == b.street && samePlace(a, b):
				m = addrStreet
			case a.postal != "" && a.postal == b.postal:
				m = addrPostal
			}
			if m > best {
				best = m
			}
		}
	}
	return best
}

// samePerson reports whether a patient is a workforce member: same
// family name, first given name and birth date, and, when both have
// an address, a shared address (line or postal code).
func samePerson(p, w demographics) bool {
	if p.family == "" || p.family != w.family || p.birth == "" || p.birth != w.birth {
		return false
	}
	if p.given != "" && w.given != "" && p.given != w.given {
		return false
	}
	if len(p.addrs) > 0 && len(w.addrs) > 0 && compareAddresses(p.addrs, w.addrs) < addrPostal {
		return false
	}
	return true
}
