package search

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Term is one index entry (from [IndexTerms]) or one query alternative
// (from [Registry.ParseQuery]): the single place where normalisation is
// defined, so indexing and querying always agree.
//
// A term is either a key or a date range. Key is the plaintext input of
// the blind index: the caller hashes it with a keyed PRF (scoped by Param
// and resource type) before it reaches storage; Key must never be stored
// or logged. A date term (IsDate) carries [Lo, Hi] in unix microseconds,
// UTC, inclusive, and is stored in plaintext; identifying dates are never
// date terms.
type Term struct {
	Param  string // index column: "code", "name", "name:exact", "birthdate", ...
	Key    string
	IsDate bool
	Lo, Hi int64
}

// MaxPrefixRunes bounds the prefixes indexed for a string value: a
// default string search matches the first 32 runes of the normalised
// query; longer queries match on their first 32 runes (a superset the
// caller narrows after decryption if it needs exactness beyond that).
// It also bounds index growth: at most 32 keys per string value.
const MaxPrefixRunes = 32

// exactSuffix is appended to Param for :exact string terms.
const exactSuffix = ":exact"

// IdentifierSuffix is appended to a reference parameter's code for the
// index column of its Reference.identifier values (token terms), which
// the :identifier modifier searches ("subject:identifier").
const IdentifierSuffix = ":identifier"

// Key spaces of token terms. The length prefix makes "system|code" keys
// unambiguous even when a system contains '|'.
func tokenAnyKey(code string) string      { return "c|" + code }
func tokenNoSystemKey(code string) string { return "n|" + code }
func tokenSystemKey(system, code string) string {
	return "s" + strconv.Itoa(len(system)) + "|" + system + "|" + code
}

// Birthdate key spaces, one per precision.
func dayKey(t time.Time) string   { return "d|" + t.Format("2006-01-02") }
func monthKey(t time.Time) string { return "m|" + t.Format("2006-01") }
func yearKey(t time.Time) string  { return "y|" + t.Format("2006") }

// IndexTerms returns the index terms of one extracted value:
//
//   - token: "any system" key for the code, plus either the system|code
//     key and the system key or the "no system" key, so code=c,
//     code=s|c, code=|c and code=s| match;
//   - number, quantity, uri, composite, and the :text and :of-type
//     values of tokens: the terms computed at extraction (number.go,
//     quantity.go, uri.go, composite.go, tokenmods.go);
//   - string: under Param, every prefix (1 to MaxPrefixRunes runes) of the
//     normalised value ([Normalize]); under Param+":exact", the value as is;
//   - reference: "Type/id" (a bare-id query expands to each target type);
//     a Reference.identifier is a token value of its own column,
//     Param+[IdentifierSuffix] (extracted as such by [Registry.Extract]);
//   - date: the range [Lo, Hi], unless the value is identifying
//     (birthdate): then keys for its year, month and day, as far as its
//     precision goes, so that only equality at one of those precisions
//     can be searched and no plaintext date is stored.
//
// Terms of one value are distinct; values of one resource may repeat
// terms: use [Terms] to merge them.
func IndexTerms(v Value) []Term {
	key := func(param, k string) Term { return Term{Param: param, Key: k} }
	if v.terms != nil {
		return v.terms
	}
	switch v.Type {
	case Token:
		if v.Code == "" {
			return nil
		}
		t := []Term{key(v.Param, tokenAnyKey(v.Code))}
		if v.HasSystem {
			t = append(t, key(v.Param, tokenSystemKey(v.System, v.Code)))
			if v.System != "" {
				t = append(t, key(v.Param, tokenSystemOnlyKey(v.System)))
			}
			return t
		}
		return append(t, key(v.Param, tokenNoSystemKey(v.Code)))
	case String:
		n := []rune(Normalize(v.Str))
		if len(n) == 0 {
			return nil
		}
		t := make([]Term, 0, min(len(n), MaxPrefixRunes)+1)
		for i := 1; i <= len(n) && i <= MaxPrefixRunes; i++ {
			t = append(t, key(v.Param, string(n[:i])))
		}
		return append(t, key(v.Param+exactSuffix, v.Str))
	case Reference:
		typ, id, ok := strings.Cut(v.Ref, "/")
		if !ok || typ == "" || id == "" {
			return nil
		}
		// Only "Type/id": a query for a bare id expands to each target
		// type of the parameter, which keeps the index one row smaller.
		return []Term{key(v.Param, v.Ref)}
	case Date:
		if v.Identifying {
			var t []Term
			switch datePrecision(v.Lo, v.Hi) {
			case precDay:
				t = append(t, key(v.Param, dayKey(v.Lo)))
				fallthrough
			case precMonth:
				t = append(t, key(v.Param, monthKey(v.Lo)))
				fallthrough
			case precYear:
				t = append(t, key(v.Param, yearKey(v.Lo)))
			}
			return t
		}
		return []Term{{Param: v.Param, IsDate: true, Lo: v.Lo.UnixMicro(), Hi: v.Hi.UnixMicro()}}
	}
	return nil
}

// Terms returns the distinct index terms of values, in first-seen order:
// the index rows of one resource version.
func Terms(values []Value) []Term {
	seen := map[Term]struct{}{}
	var out []Term
	for _, v := range values {
		for _, t := range IndexTerms(v) {
			if _, dup := seen[t]; !dup {
				seen[t] = struct{}{}
				out = append(out, t)
			}
		}
	}
	return out
}

// datePrecision recovers the precision of a date value from its range:
// a whole UTC year, month or day, else a point in time (precTime), which
// an identifying date should never be (Patient.birthDate is a date).
func datePrecision(lo, hi time.Time) precision {
	lo, hi = lo.UTC(), hi.UTC()
	if lo.Hour() != 0 || lo.Minute() != 0 || lo.Second() != 0 || lo.Nanosecond() != 0 {
		return precTime
	}
	end := hi.Add(time.Microsecond)
	switch {
	case lo.YearDay() == 1 && end.Equal(lo.AddDate(1, 0, 0)):
		return precYear
	case lo.Day() == 1 && end.Equal(lo.AddDate(0, 1, 0)):
		return precMonth
	case end.Equal(lo.AddDate(0, 0, 1)):
		return precDay
	}
	return precTime
}

// Normalize is the string normalisation of search: Unicode NFKD,
// combining marks removed, lower-cased, runs of white space collapsed to
// one space, trimmed. "  Godínez  JR " becomes "godinez jr".
func Normalize(s string) string {
	d := norm.NFKD.String(s)
	var sb strings.Builder
	sb.Grow(len(d))
	space := false
	for _, r := range d {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteString(string(unicode.ToLower(r)))
	}
	return sb.String()
}

// TermSystem returns the system a token term of a query names: that of
// a "system|code" term or of a "system|" term; ok is false for any
// other term (a code in any system, "|code", :text, :of-type, or not a
// token term).
func TermSystem(t Term) (system string, ok bool) {
	if t.IsDate || strings.Contains(t.Param, ":") && !strings.HasSuffix(t.Param, IdentifierSuffix) {
		return "", false
	}
	k := t.Key
	if rest, found := strings.CutPrefix(k, "y|"); found {
		return rest, rest != ""
	}
	rest, found := strings.CutPrefix(k, "s")
	if !found {
		return "", false
	}
	n, rest, found := strings.Cut(rest, "|")
	if !found {
		return "", false
	}
	size, err := strconv.Atoi(n)
	if err != nil || size <= 0 || size >= len(rest) || rest[size] != '|' || strconv.Itoa(size) != n {
		return "", false
	}
	return rest[:size], true
}
