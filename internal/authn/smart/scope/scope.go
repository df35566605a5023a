// Package scope parses and evaluates SMART on FHIR scopes (SMART App
// Launch 2.0, section "Scopes and Launch Context").
//
// # Grammar
//
// A scope string is a space-separated list of scopes. Each scope is one of:
//
//   - a SMART v2 resource scope: <context>/<Type|*>.<perms>[?<query>], where
//     context is patient, user or system and perms is a non-empty subset
//     of the letters c r u d s written in that order ("rs", "cruds");
//   - a SMART v1 resource scope: <context>/<Type|*>.<read|write|*>, which
//     is mapped to v2 (read = rs, write = cud, * = cruds);
//   - one of the non-resource scopes openid, fhirUser, profile,
//     offline_access, online_access, launch and launch/<name>.
//
// # Security invariants
//
//   - Input is bounded: [MaxLen] bytes, [MaxScopes] scopes, [MaxScopeLen]
//     bytes per scope. Parsing is linear and allocates in proportion.
//   - Error text quotes at most a short, sanitised prefix of the offending
//     scope: scopes are not secrets, but error text must stay small.
//   - A scope with a search restriction (?category=...) is parsed and
//     kept, but [Set.Allows] never lets it grant anything: the FHIR layer
//     cannot enforce the restriction yet, so it fails closed.
//   - Unknown scopes are errors, never silently ignored.
//
// Values of this package are immutable and safe for concurrent use.
package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits on untrusted input. A real client asks for a few dozen scopes at
// most; the bounds keep parsing cheap whatever is sent.
const (
	// MaxLen bounds the whole scope string in bytes.
	MaxLen = 4096
	// MaxScopes bounds the number of scopes in one string.
	MaxScopes = 64
	// MaxScopeLen bounds one scope in bytes (a 64-byte resource type, a
	// context and a short query fit well within it).
	MaxScopeLen = 256
	// maxTypeLen bounds a resource type name; the longest FHIR R4 name
	// is 35 bytes (MedicinalProductPharmaceutical...).
	maxTypeLen = 64
)

// Errors.
var (
	// ErrSyntax means the scope string is malformed or names an unknown
	// scope: answer invalid_scope (RFC 6749 §5.2).
	ErrSyntax = errors.New("scope: invalid scope")
	// ErrTooLarge means the scope string exceeds MaxLen, MaxScopes or
	// MaxScopeLen: answer invalid_scope (or invalid_request).
	ErrTooLarge = errors.New("scope: scope string too large")
)

// Context is the access context of a resource scope.
type Context string

// Contexts (SMART v2 "patient/", "user/", "system/").
const (
	Patient Context = "patient"
	User    Context = "user"
	System  Context = "system"
)

// Interaction is one SMART v2 permission letter.
type Interaction byte

// Interactions, in the order SMART v2 requires them to be written, with
// the FHIR RESTful interactions each one covers (SMART App Launch 2.0,
// "Scopes for requesting FHIR resources"). A caller maps a request to
// its letter by this table; history is split by level.
const (
	Create Interaction = 'c' // create (type level)
	Read   Interaction = 'r' // read, vread, history-instance
	Update Interaction = 'u' // update, patch
	Delete Interaction = 'd' // delete
	Search Interaction = 's' // search-type, search-system, history-type, history-system
)

// Perms is a set of interactions.
type Perms uint8

const (
	permC Perms = 1 << iota
	permR
	permU
	permD
	permS
	permAll = permC | permR | permU | permD | permS
)

// order lists the letters in the order SMART v2 requires.
var order = [...]struct {
	letter byte
	p      Perms
}{{'c', permC}, {'r', permR}, {'u', permU}, {'d', permD}, {'s', permS}}

func permOf(i Interaction) Perms {
	for _, o := range order {
		if o.letter == byte(i) {
			return o.p
		}
	}
	return 0
}

// Has reports whether p includes i.
func (p Perms) Has(i Interaction) bool { q := permOf(i); return q != 0 && p&q == q }

// String writes p in SMART v2 order ("cruds").
func (p Perms) String() string {
	var b []byte
	for _, o := range order {
		if p&o.p != 0 {
			b = append(b, o.letter)
		}
	}
	return string(b)
}

// Kind distinguishes resource scopes from the others.
type Kind uint8

// Kinds.
const (
	KindResource      Kind = iota + 1 // patient|user|system/Type.perms
	KindOpenID                        // openid
	KindFHIRUser                      // fhirUser
	KindProfile                       // profile (SMART v1 / OIDC)
	KindOfflineAccess                 // offline_access
	KindOnlineAccess                  // online_access
	KindLaunch                        // launch (EHR launch)
	KindLaunchContext                 // launch/patient, launch/encounter, ...
)

var special = map[string]Kind{
	"openid":         KindOpenID,
	"fhirUser":       KindFHIRUser,
	"profile":        KindProfile,
	"offline_access": KindOfflineAccess,
	"online_access":  KindOnlineAccess,
	"launch":         KindLaunch,
}

// Scope is one parsed scope. The zero value is not a valid scope.
type Scope struct {
	Kind     Kind
	Context  Context // resource scopes only
	Resource string  // resource type or "*"; resource scopes only
	Perms    Perms   // resource scopes only; never empty
	Query    string  // search restriction without "?", "" if none
	V1       bool    // written in SMART v1 syntax
	Launch   string  // KindLaunchContext: "patient", "encounter"...
}

// Restricted reports whether s carries a search restriction.
func (s Scope) Restricted() bool { return s.Query != "" }

// String is the canonical form: SMART v2 syntax for resource scopes (a v1
// scope is written as its v2 equivalent).
func (s Scope) String() string {
	switch s.Kind {
	case KindResource:
		out := string(s.Context) + "/" + s.Resource + "." + s.Perms.String()
		if s.Query != "" {
			out += "?" + s.Query
		}
		return out
	case KindLaunchContext:
		return "launch/" + s.Launch
	}
	for k, v := range special {
		if v == s.Kind {
			return k
		}
	}
	return ""
}

// Parse parses one scope.
func Parse(s string) (Scope, error) {
	if len(s) > MaxScopeLen {
		return Scope{}, fmt.Errorf("%w: a scope is longer than %d bytes", ErrTooLarge, MaxScopeLen)
	}
	if k, ok := special[s]; ok {
		return Scope{Kind: k}, nil
	}
	if name, ok := strings.CutPrefix(s, "launch/"); ok {
		if !isName(name) {
			return Scope{}, syntaxErr(s, "bad launch context")
		}
		return Scope{Kind: KindLaunchContext, Launch: name}, nil
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Scope{}, syntaxErr(s, "unknown scope")
	}
	c := Context(ctx)
	if c != Patient && c != User && c != System {
		return Scope{}, syntaxErr(s, "unknown context")
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return Scope{}, syntaxErr(s, "missing permissions")
	}
	if typ != "*" && !isResourceType(typ) {
		return Scope{}, syntaxErr(s, "bad resource type")
	}
	out := Scope{Kind: KindResource, Context: c, Resource: typ}
	switch perm {
	case "read":
		out.Perms, out.V1 = permR|permS, true
	case "write":
		out.Perms, out.V1 = permC|permU|permD, true
	case "*":
		out.Perms, out.V1 = permAll, true
	default:
		p, err := parsePerms(perm)
		if err != nil {
			return Scope{}, syntaxErr(s, err.Error())
		}
		out.Perms = p
	}
	if hasQuery {
		if out.V1 {
			return Scope{}, syntaxErr(s, "search restrictions need SMART v2 syntax")
		}
		if !isQuery(query) {
			return Scope{}, syntaxErr(s, "bad search restriction")
		}
		out.Query = query
	}
	return out, nil
}

// parsePerms accepts a non-empty subsequence of "cruds".
func parsePerms(p string) (Perms, error) {
	if p == "" {
		return 0, errors.New("empty permissions")
	}
	var out Perms
	next := 0
	for i := 0; i < len(p); i++ {
		found := false
		for j := next; j < len(order); j++ {
			if order[j].letter == p[i] {
				out |= order[j].p
				next = j + 1
				found = true
				break
			}
		}
		if !found {
			return 0, errors.New("permissions must be a subset of c r u d s, in that order")
		}
	}
	return out, nil
}

func isResourceType(s string) bool {
	if s == "" || len(s) > maxTypeLen || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" || len(s) > maxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isQuery accepts name=value(&name=value)* with a conservative alphabet:
// parameter names as FHIR writes them (with modifiers after ':') and
// values of token characters (system|code, URLs).
func isQuery(q string) bool {
	if q == "" {
		return false
	}
	for _, pair := range strings.Split(q, "&") {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" || value == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':' || c == '.') {
				return false
			}
		}
		for i := 0; i < len(value); i++ {
			c := value[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:/|%~,", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// syntaxErr names the problem and quotes a short, printable prefix.
func syntaxErr(s, why string) error {
	const show = 48
	if len(s) > show {
		s = s[:show] + "..."
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	return fmt.Errorf("%w %q: %s", ErrSyntax, s, why)
}

// Set is an immutable set of scopes. The zero value is the empty set,
// which allows nothing.
type Set struct{ scopes []Scope }

// ParseSet parses a space-separated scope string (RFC 6749 §3.3: scopes
// are separated by single spaces; runs of spaces are tolerated).
// Duplicates are removed. It returns ErrSyntax or ErrTooLarge.
func ParseSet(s string) (Set, error) {
	if len(s) > MaxLen {
		return Set{}, fmt.Errorf("%w: longer than %d bytes", ErrTooLarge, MaxLen)
	}
	var out []Scope
	n := 0
	for f := range strings.FieldsSeq(s) {
		n++
		if n > MaxScopes {
			return Set{}, fmt.Errorf("%w: more than %d scopes", ErrTooLarge, MaxScopes)
		}
		sc, err := Parse(f)
		if err != nil {
			return Set{}, err
		}
		out = append(out, sc)
	}
	return NewSet(out...), nil
}

// NewSet builds a set from scopes, dropping duplicates (by canonical
// form) and sorting for a stable String.
func NewSet(scopes ...Scope) Set {
	out := make([]Scope, 0, len(scopes))
	seen := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		k := s.String()
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	return Set{scopes: out}
}

// Scopes returns a copy of the scopes in s.
func (s Set) Scopes() []Scope { return slices.Clone(s.scopes) }

// Len is the number of scopes.
func (s Set) Len() int { return len(s.scopes) }

// Empty reports whether s has no scope.
func (s Set) Empty() bool { return len(s.scopes) == 0 }

// String is the canonical space-separated form (v2 syntax, sorted).
func (s Set) String() string {
	parts := make([]string, len(s.scopes))
	for i, sc := range s.scopes {
		parts[i] = sc.String()
	}
	return strings.Join(parts, " ")
}

// Has reports whether s contains a scope of kind k (for the
// non-resource scopes: openid, offline_access...).
func (s Set) Has(k Kind) bool {
	return slices.ContainsFunc(s.scopes, func(x Scope) bool { return x.Kind == k })
}

// Allows reports whether some unrestricted resource scope in s grants
// interaction i on resourceType in context c. A scope with a search
// restriction grants nothing here (see the package invariants). A scope
// never crosses contexts: user/ does not imply patient/ or system/.
func (s Set) Allows(c Context, resourceType string, i Interaction) bool {
	p := permOf(i)
	if p == 0 {
		return false
	}
	for _, sc := range s.scopes {
		if sc.Kind == KindResource && !sc.Restricted() && sc.Context == c &&
			(sc.Resource == "*" || sc.Resource == resourceType) && sc.Perms&p == p {
			return true
		}
	}
	return false
}

// Intersect returns what of requested the granted set permits: for each
// requested resource scope and each matching unrestricted granted scope
// of the same context, the narrower resource type and the common
// permissions. Non-resource scopes are kept when granted holds the same
// scope. This is the SMART rule "the server may grant fewer scopes than
// requested".
func Intersect(granted, requested Set) Set {
	var out []Scope
	for _, r := range requested.scopes {
		if r.Kind != KindResource {
			if slices.ContainsFunc(granted.scopes, func(g Scope) bool { return g.String() == r.String() }) {
				out = append(out, r)
			}
			continue
		}
		if r.Restricted() {
			continue // fail closed: restrictions are not supported yet
		}
		for _, g := range granted.scopes {
			if g.Kind != KindResource || g.Restricted() || g.Context != r.Context {
				continue
			}
			typ := ""
			switch {
			case g.Resource == r.Resource, g.Resource == "*":
				typ = r.Resource
			case r.Resource == "*":
				typ = g.Resource
			default:
				continue
			}
			if p := g.Perms & r.Perms; p != 0 {
				out = append(out, Scope{Kind: KindResource, Context: r.Context, Resource: typ, Perms: p})
			}
		}
	}
	// Drop scopes another result scope already covers, so the granted
	// string stays short ("system/*.rs", not also "system/Patient.rs").
	kept := out[:0:0]
	for i, x := range out {
		covered := slices.ContainsFunc(out, func(y Scope) bool {
			return x.Kind == KindResource && y.Kind == KindResource && y.Context == x.Context &&
				y.Resource == "*" && x.Resource != "*" && x.Perms&y.Perms == x.Perms
		})
		if !covered || out[i].Kind != KindResource {
			kept = append(kept, x)
		}
	}
	return NewSet(kept...)
}
