package search

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// Bounds on a query (STYLE rule 24: search complexity is bounded).
const (
	// MaxParams caps the parameter occurrences (AND clauses, control
	// parameters included) of one query.
	MaxParams = 32
	// MaxAlternatives caps the comma-separated values (OR) of one
	// occurrence.
	MaxAlternatives = 64
	// MaxValueLen caps one raw parameter value, in bytes.
	MaxValueLen = 1024
	// DefaultCount is the page size when _count is absent.
	DefaultCount = 20
	// MaxCount is the largest page: larger _count values are lowered to it
	// (FHIR lets a server return fewer than asked).
	MaxCount = 1000
)

// DateOp is a FHIR date prefix. The semantics, for a resource range R
// and the query range Q of the value at its precision: eq: R within Q;
// ne: not eq; gt: R.Hi > Q.Hi; lt: R.Lo < Q.Lo; ge: R.Hi >= Q.Lo;
// le: R.Lo <= Q.Hi (the same strings as storage.DateOp).
type DateOp string

const (
	OpEq DateOp = "eq"
	OpNe DateOp = "ne"
	OpGt DateOp = "gt"
	OpLt DateOp = "lt"
	OpGe DateOp = "ge"
	OpLe DateOp = "le"
	OpSa DateOp = "sa" // starts after: R.Lo > Q.Hi
	OpEb DateOp = "eb" // ends before: R.Hi < Q.Lo
	// OpAp, approximately: R overlaps Q widened on both sides by a tenth
	// of the gap between Q and now (at least one day), as R4 recommends.
	OpAp DateOp = "ap"
)

// DatePred is one date comparison; Lo and Hi are unix microseconds, UTC,
// inclusive: the range of the query value at its precision.
type DatePred struct {
	Op     DateOp
	Lo, Hi int64
}

// Pred is one parameter occurrence: the resource must match it (the
// predicates of a Query are ANDed). Exactly one form is used:
//
//   - Missing != nil: the :missing modifier; the resource has (false) or
//     lacks (true) any index term of Param.Code.
//   - Terms: the resource has an index term equal to one of them (OR).
//     Each Term's own Param names the index column to look in, which may
//     differ from Param.Code ("name:exact"). The caller hashes each Key
//     exactly as it hashes index terms.
//   - Dates: the resource has a date term satisfying one of them (OR).
//   - Terms and Pairs (a composite over the resource itself, or a
//     combo; composite.go): the resource has a term equal to one of
//     Terms, or, for one of Pairs, a term of its First and one of its
//     Second (OR of conjunctions). Pairs never come with Negate.
//
// Negate (the token :not modifier) inverts the whole predicate: the
// resource matches when no term of Param satisfies it.
type Pred struct {
	Param    *Param
	Modifier string // "", "exact", "not", "missing", "identifier" or a resource type (reference)
	Negate   bool
	Missing  *bool
	Terms    []Term
	Pairs    []Pair
	Dates    []DatePred
	// ValueSet is the canonical url (url or url|version) of the token
	// :in and :not-in modifiers; Terms is then empty and the caller
	// expands the ValueSet (as the searching user) into Terms.
	ValueSet string
}

// SortSpec is one _sort key: "_id", "_lastUpdated" or a parameter.
// Value is set for a key the store cannot order by (a string, token,
// reference or uri parameter, or a blind-indexed date such as
// birthdate): the caller sorts the decrypted matches ([Registry.SortKey],
// ADR 0038).
type SortSpec struct {
	Param string
	Desc  bool
	Value bool
}

// ValueSort reports whether any key of sorts needs the decrypted matches.
func ValueSort(sorts []SortSpec) bool {
	for _, so := range sorts {
		if so.Value {
			return true
		}
	}
	return false
}

// Query is a parsed search. Preds, ID (OR of ids) and LastUpdated (each
// element ANDed) all must match.
type Query struct {
	Type        string
	Preds       []Pred
	ID          []string
	LastUpdated []DatePred
	Count       int // page size, 0..MaxCount; DefaultCount when absent
	Sort        []SortSpec
	Total       string // "", "none", "estimate" or "accurate"
	Summary     string // "", "count" (the total only), "true", "text" or "data"
	Ignored     []string

	Chains     []Chain   // chained parameters and _has, each ANDed
	Include    []Include // _include (forward)
	RevInclude []Include // _revinclude
}

// ignoredParams are accepted and ignored: they concern representation,
// which the HTTP layer handles.
var ignoredParams = map[string]bool{"_format": true, "_pretty": true}

// ParseQuery parses the search parameters q for resourceType.
//
// Supported: the parameters of [Registry.Params]; _id; _lastUpdated
// (repeatable, no comma); _count; _sort (_id, _lastUpdated, date,
// string, token, reference and uri parameters, "-" for descending; see
// [SortSpec]); _total; _summary and _elements (their
// representation is the caller's: fhir.ParseSubset); _format and _pretty
// (ignored); _include and _revinclude (with :iterate; see [Include]);
// chained parameters and _has (see [Chain]).
// Modifiers: string :exact; token :not; reference :<Type> and
// :identifier; :missing on all. Date prefixes eq ne gt lt ge le sa eb ap
// (on birthdate too, see birthdate.go). Comma means OR, repetition AND.
//
// With lenient false an unknown parameter is an error wrapping
// [ErrUnknownParam], and an unsupported control parameter one wrapping
// [ErrUnsupported]; with lenient true both are listed (sorted) in
// Query.Ignored. A chain, _has, _include or _revinclude naming an unknown
// parameter is, when lenient, ignored whole and listed too: it never
// turns into a search of every resource of its type. Other errors wrap [ErrUnsupported],
// [ErrInvalidValue], [ErrTooComplex] or, for a resourceType that is not
// an R4 type, [fhir.ErrUnknownType]. Error text never contains values.
func (r *Registry) ParseQuery(resourceType string, q url.Values, lenient bool) (*Query, error) {
	if !fhir.IsStorableType(resourceType) {
		return nil, fmt.Errorf("parsing search: %w", fhir.ErrUnknownType)
	}
	out := &Query{Type: resourceType, Count: DefaultCount}
	n := 0
	for _, vs := range q {
		n += len(vs)
	}
	if n > MaxParams {
		return nil, fmt.Errorf("parsing search: more than %d parameters: %w", MaxParams, ErrTooComplex)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors and predicate order
	seen := map[string]bool{}
	for _, k := range keys {
		for _, raw := range q[k] {
			if len(raw) > MaxValueLen {
				return nil, fmt.Errorf("parsing search parameter %s: value longer than %d bytes: %w", safeParam(k), MaxValueLen, ErrTooComplex)
			}
			ignored, err := r.parseOne(out, k, raw, lenient, seen)
			if err != nil {
				return nil, err
			}
			if n := out.searches(); n > MaxChainSearches {
				return nil, fmt.Errorf("parsing search: chained parameters and _has need %d searches, limit %d: %w", n, MaxChainSearches, ErrTooComplex)
			}
			if ignored && !slices.Contains(out.Ignored, k) {
				out.Ignored = append(out.Ignored, k)
			}
		}
	}
	return out, nil
}

// parseOne handles one key=value; it reports whether it was ignored.
func (r *Registry) parseOne(out *Query, key, raw string, lenient bool, seen map[string]bool) (bool, error) {
	name := safeParam(key)
	switch {
	case strings.HasPrefix(key, "_has:"):
		_, err := r.parseHas(out, key, raw, 1)
		return r.leniently(lenient, err)
	case strings.Contains(key, ".") && !strings.HasPrefix(key, "_"):
		_, err := r.parseChain(out, key, raw, 1)
		return r.leniently(lenient, err)
	}
	code, modifier, _ := strings.Cut(key, ":")
	if code == "_include" || code == "_revinclude" {
		return r.leniently(lenient, r.parseInclude(out, code == "_revinclude", modifier, raw))
	}
	once := func() error {
		if seen[code] {
			return fmt.Errorf("parsing search parameter %s: given more than once: %w", name, ErrInvalidValue)
		}
		seen[code] = true
		return nil
	}
	if strings.HasPrefix(code, "_") && !isMetaParam(code) {
		if modifier != "" && !ignoredParams[code] {
			return r.unsupported(lenient, "parsing search parameter %s: modifiers are not supported on it", name)
		}
		switch code {
		case "_id":
			if err := once(); err != nil {
				return false, err
			}
			ids, err := parseIDs(raw)
			if err != nil {
				return false, err
			}
			out.ID = ids
		case "_lastUpdated":
			d, err := parseLastUpdated(raw, r.now())
			if err != nil {
				return false, err
			}
			out.LastUpdated = append(out.LastUpdated, d)
		case "_count":
			if err := once(); err != nil {
				return false, err
			}
			c, err := strconv.Atoi(raw)
			if err != nil || c < 0 {
				return false, fmt.Errorf("parsing search parameter _count: not a non-negative integer: %w", ErrInvalidValue)
			}
			out.Count = min(c, MaxCount)
		case "_sort":
			if err := once(); err != nil {
				return false, err
			}
			s, err := r.parseSort(out.Type, raw)
			if err != nil {
				return false, err
			}
			out.Sort = s
		case "_summary":
			// count asks for the total only; the other modes concern
			// representation (fhir.ParseSubset, applied by the record).
			if err := once(); err != nil {
				return false, err
			}
			switch raw {
			case "count", "true", "text", "data":
				out.Summary = raw
			case "false":
			default:
				return false, fmt.Errorf("parsing search parameter _summary: want true, text, data, count or false: %w", ErrInvalidValue)
			}
		case "_elements":
			// Representation: parsed by fhir.ParseSubset.
		case "_total":
			if err := once(); err != nil {
				return false, err
			}
			switch raw {
			case "none", "estimate", "accurate":
				out.Total = raw
			default:
				return false, fmt.Errorf("parsing search parameter _total: want none, estimate or accurate: %w", ErrInvalidValue)
			}
		default:
			if ignoredParams[code] {
				return false, nil
			}
			if msg := refusedParam(code); msg != "" {
				return r.unsupported(lenient, msg, name)
			}
			return r.unsupported(lenient, "parsing search: parameter %s is not supported", name)
		}
		return false, nil
	}
	p, ok := r.Lookup(out.Type, code)
	if !ok {
		if lenient {
			return true, nil
		}
		return false, fmt.Errorf("parsing search: parameter %s is not supported for %s: %w", name, out.Type, ErrUnknownParam)
	}
	pred, err := parsePred(p, modifier, raw, r.now())
	if err != nil {
		return false, err
	}
	out.Preds = append(out.Preds, pred)
	return false, nil
}

// leniently returns err, or, when lenient and err says the parameter is
// unknown or unsupported, that the parameter is ignored.
func (r *Registry) leniently(lenient bool, err error) (bool, error) {
	if lenient && (errors.Is(err, ErrUnknownParam) || errors.Is(err, ErrUnsupported)) {
		return true, nil
	}
	return false, err
}

func (r *Registry) unsupported(lenient bool, format string, name string) (bool, error) {
	if lenient {
		return true, nil
	}
	return false, fmt.Errorf(format+": %w", name, ErrUnsupported)
}

func parsePred(p *Param, modifier, raw string, now time.Time) (Pred, error) {
	name := p.Code
	if modifier != "" {
		name += ":" + safeParam(modifier)
	}
	pred := Pred{Param: p, Modifier: modifier}
	if modifier == "missing" {
		switch raw {
		case "true", "false":
			b := raw == "true"
			pred.Missing = &b
			return pred, nil
		}
		return pred, fmt.Errorf("parsing search parameter %s: want true or false: %w", name, ErrInvalidValue)
	}
	if done, err := parseExtended(p, name, modifier, raw, &pred); done { // params.go
		return pred, err
	}
	switch {
	case modifier == "":
	case p.Type == String && modifier == "exact":
	case p.Type == Token && modifier == "not":
		pred.Negate = true
	case p.Type == Reference && fhir.IsStorableType(modifier) && (len(p.Targets) == 0 || slices.Contains(p.Targets, modifier)):
	case p.Type == Reference && modifier == "identifier":
	case modifier == "contains":
		return pred, fmt.Errorf("parsing search parameter %s: the :contains modifier is not supported (string search matches prefixes; use :exact for whole values): %w", name, ErrUnsupported)
	default:
		return pred, fmt.Errorf("parsing search parameter %s: modifier is not supported for a %s parameter: %w", name, p.Type, ErrUnsupported)
	}
	alts, err := alternatives(name, raw)
	if err != nil {
		return pred, err
	}
	for _, a := range alts {
		switch p.Type {
		case Token:
			t, err := tokenQueryTerm(p, name, a)
			if err != nil {
				return pred, err
			}
			pred.Terms = append(pred.Terms, t)
		case String:
			if modifier == "exact" {
				pred.Terms = append(pred.Terms, Term{Param: p.Code + exactSuffix, Key: unescape(a)})
				continue
			}
			n := []rune(Normalize(unescape(a)))
			if len(n) == 0 {
				return pred, fmt.Errorf("parsing search parameter %s: empty value: %w", name, ErrInvalidValue)
			}
			pred.Terms = append(pred.Terms, Term{Param: p.Code, Key: string(n[:min(len(n), MaxPrefixRunes)])})
		case Reference:
			if modifier == "identifier" {
				// Reference.identifier, indexed as a token under its own
				// column (see IndexTerms).
				t, err := tokenQueryTerm(p, name, a)
				if err != nil {
					return pred, err
				}
				t.Param = p.Code + IdentifierSuffix
				pred.Terms = append(pred.Terms, t)
				continue
			}
			ts, err := referenceQueryTerms(p, name, modifier, unescape(a))
			if err != nil {
				return pred, err
			}
			pred.Terms = append(pred.Terms, ts...)
		case Date:
			if p.identifying {
				ts, negate, err := identifyingDateTerms(p, name, unescape(a), len(alts), now)
				if err != nil {
					return pred, err
				}
				pred.Terms = append(pred.Terms, ts...)
				pred.Negate = negate
				continue
			}
			d, err := parseDatePred(name, unescape(a), now)
			if err != nil {
				return pred, err
			}
			pred.Dates = append(pred.Dates, d)
		}
	}
	return pred, nil
}

func tokenQueryTerm(p *Param, name, v string) (Term, error) {
	parts := splitEscaped(v, '|')
	switch len(parts) {
	case 1:
		code := unescape(parts[0])
		if code == "" {
			break
		}
		return Term{Param: p.Code, Key: tokenAnyKey(code)}, nil
	case 2:
		sys, code := unescape(parts[0]), unescape(parts[1])
		if code == "" && sys != "" {
			return Term{Param: p.Code, Key: tokenSystemOnlyKey(sys)}, nil // any code of sys
		}
		if code == "" {
			return Term{}, fmt.Errorf("parsing search parameter %s: want code, system|code, |code or system|: %w", name, ErrInvalidValue)
		}
		if sys == "" {
			return Term{Param: p.Code, Key: tokenNoSystemKey(code)}, nil
		}
		return Term{Param: p.Code, Key: tokenSystemKey(sys, code)}, nil
	}
	return Term{}, fmt.Errorf("parsing search parameter %s: want code, system|code or |code: %w", name, ErrInvalidValue)
}

// referenceQueryTerms returns the terms one reference value matches. The
// index holds only "Type/id", so a bare id becomes one alternative per
// target type of the parameter (or the :Type modifier's type).
func referenceQueryTerms(p *Param, name, modifier, v string) ([]Term, error) {
	if idRE.MatchString(v) {
		if modifier != "" {
			return []Term{{Param: p.Code, Key: modifier + "/" + v}}, nil
		}
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("parsing search parameter %s: give the reference as Type/id: %w", name, ErrInvalidValue)
		}
		ts := make([]Term, len(p.Targets))
		for i, t := range p.Targets {
			ts[i] = Term{Param: p.Code, Key: t + "/" + v}
		}
		return ts, nil
	}
	typ, id, ok := parseReference(v)
	if !ok || (modifier != "" && typ != modifier) {
		return nil, fmt.Errorf("parsing search parameter %s: want id, Type/id or an absolute URL ending in Type/id: %w", name, ErrInvalidValue)
	}
	return []Term{{Param: p.Code, Key: typ + "/" + id}}, nil
}

func parseDatePred(name, v string, now time.Time) (DatePred, error) {
	op, v, err := datePrefix(name, v)
	if err != nil {
		return DatePred{}, err
	}
	lo, hi, _, ok := parseDate(v)
	if !ok {
		return DatePred{}, fmt.Errorf("parsing search parameter %s: not a valid date: %w", name, ErrInvalidValue)
	}
	if op == OpAp {
		lo, hi = approximately(lo, hi, now)
	}
	return DatePred{Op: op, Lo: lo.UnixMicro(), Hi: hi.UnixMicro()}, nil
}

// datePrefix splits a date search value into its prefix (eq when there
// is none) and the date.
func datePrefix(name, v string) (DateOp, string, error) {
	if len(v) < 2 || v[0] < 'a' || v[0] > 'z' {
		return OpEq, v, nil
	}
	switch p := DateOp(v[:2]); p {
	case OpEq, OpNe, OpGt, OpLt, OpGe, OpLe, OpSa, OpEb, OpAp:
		return p, v[2:], nil
	}
	return "", "", fmt.Errorf("parsing search parameter %s: unknown prefix: %w", name, ErrInvalidValue)
}

// approximately widens [lo, hi] on both sides by a tenth of the gap
// between it and now, and by at least a day.
func approximately(lo, hi, now time.Time) (time.Time, time.Time) {
	gap := now.Sub(lo)
	if d := hi.Sub(now); d > gap {
		gap = d
	}
	if gap < 0 {
		gap = -gap
	}
	w := max(gap/10, 24*time.Hour)
	wlo, whi := lo.Add(-w), hi.Add(w)
	if wlo.Before(minTime) {
		wlo = minTime
	}
	if whi.After(maxTime) {
		whi = maxTime
	}
	return wlo, whi
}

func (r *Registry) parseSort(typ, raw string) ([]SortSpec, error) {
	items := strings.Split(raw, ",")
	if len(items) > MaxAlternatives {
		return nil, fmt.Errorf("parsing search parameter _sort: more than %d keys: %w", MaxAlternatives, ErrTooComplex)
	}
	var out []SortSpec
	for _, it := range items {
		desc := strings.HasPrefix(it, "-")
		code := strings.TrimPrefix(it, "-")
		value := false
		switch code {
		case "_id", "_lastUpdated":
		default:
			p, ok := r.Lookup(typ, code)
			if !ok {
				// A _sort value is client data: name only known parameters.
				return nil, fmt.Errorf("parsing search parameter _sort: sorting by an unknown parameter is not supported: %w", ErrUnsupported)
			}
			switch p.Type {
			case Date:
				// Birth dates are blind-indexed: ordered like strings.
				value = p.identifying
			case String, Token, Reference, URI:
				// Keyed hashes have no order: the matches are decrypted
				// and sorted, within a bound (ADR 0038).
				value = true
			default:
				return nil, fmt.Errorf("parsing search parameter _sort: sorting by %s (a %s parameter) is not supported (use a string, token, reference, uri or date parameter, _id or _lastUpdated): %w", p.Code, p.Type, ErrUnsupported)
			}
		}
		out = append(out, SortSpec{Param: code, Desc: desc, Value: value})
	}
	return out, nil
}

// alternatives splits a value on unescaped commas (OR), refusing empty
// values and more than MaxAlternatives.
func alternatives(name, raw string) ([]string, error) {
	parts := splitEscaped(raw, ',')
	if len(parts) > MaxAlternatives {
		return nil, fmt.Errorf("parsing search parameter %s: more than %d values: %w", name, MaxAlternatives, ErrTooComplex)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("parsing search parameter %s: empty value: %w", name, ErrInvalidValue)
		}
	}
	return parts, nil
}

// splitEscaped splits s on sep where it is not preceded by a backslash
// (FHIR search escaping: \, \| \$ \\). Escapes are kept for unescape.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes FHIR search escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// paramName matches what can be a search parameter name with modifier;
// anything else is client data and is not echoed.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-.]{0,63}(:[A-Za-z][A-Za-z0-9\-.]{0,63}){0,3}$`)

func safeParam(s string) string {
	if paramName.MatchString(s) {
		return s
	}
	return "(unprintable)"
}
