package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
)

// kindSMARTApp is the Principal.Kind of an App Launch access token.
const kindSMARTApp = authn.KindSMARTApp

// errCompartment is a request of a patient-limited token outside that
// patient's compartment, or of a shape the gate cannot confine to it.
var errCompartment = errors.New("the request is outside the launch patient's compartment")

// launchGate is the scope step for App Launch tokens (its check); it
// needs only the record, to learn the owner of a resource read by id.
type launchGate struct {
	rec *record.Service
}

// check is the scope step for App Launch tokens; it runs after
// authentication and before the handler, and is separate from (and
// narrower than) the authorization policy decision that will follow it.
//
//   - user/ scopes reach what the user may reach: for a workforce user,
//     everything the role-based decision allows (Cedar, another issue);
//     for a patient account, only their own compartment.
//   - patient/ scopes reach the launch patient's compartment only:
//     resources whose owner is "Patient/<id>", and that Patient.
//
// A compartment-limited request is allowed only in a shape whose result
// the gate can confine: read and vread of one resource (its owner is
// checked first), $everything of the patient, and searches that name
// the patient (patient=, subject=, or Patient?_id=) without includes,
// chains, _has, paging cursors or lenient handling. Writes, bundles,
// history and everything else are refused until search narrowing lands.
func (g launchGate) check(r *http.Request, p authn.Principal) error {
	if p.Kind != kindSMARTApp || p.Scopes == nil {
		return nil
	}
	typ, inter, ok := interactionOf(r)
	if !ok {
		// A batch or transaction: each entry is checked by
		// bundleScopeGate; compartment-limited tokens are refused.
		if compartmentOf(p) != "" || !hasUserScope(*p.Scopes) {
			return errScope
		}
		return nil
	}
	allows := func(c scope.Context) bool { return allowsRequest(*p.Scopes, c, typ, inter) }
	var compartment string
	switch {
	case allows(scope.User) && !isPatientAccount(p):
		return nil
	case allows(scope.User):
		compartment = strings.TrimPrefix(p.FHIRUser, ident.PatientPrefix)
	case allows(scope.Patient) && p.Patient != "":
		compartment = p.Patient
	default:
		return errScope
	}
	if compartment == "" {
		return errScope
	}
	return g.inCompartment(r, compartment)
}

func hasUserScope(set scope.Set) bool {
	for _, x := range set.Scopes() {
		if x.Kind == scope.KindResource && x.Context == scope.User {
			return true
		}
	}
	return false
}

func isPatientAccount(p authn.Principal) bool {
	for _, r := range p.Roles {
		if identity.Role(r) == identity.RolePatient {
			return true
		}
	}
	return false
}

// compartmentOf is the patient a principal is confined to whatever its
// scopes: a patient account's own record. Other principals are confined
// per request by launchGate.
func compartmentOf(p authn.Principal) string {
	if p.Kind != kindSMARTApp {
		return ""
	}
	if isPatientAccount(p) {
		return strings.TrimPrefix(p.FHIRUser, ident.PatientPrefix)
	}
	return p.Patient
}

// inCompartment checks that r stays inside Patient/pid.
func (g launchGate) inCompartment(r *http.Request, pid string) error {
	parts, ok := pathSegments(r)
	if !ok {
		return errCompartment
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !get || len(parts) == 0 || parts[0] == "" || parts[0] == "_history" {
		return errCompartment
	}
	typ := parts[0]
	switch {
	case len(parts) == 1:
		return searchInCompartment(r, typ, pid)
	case len(parts) == 3 && typ == "Patient" && parts[2] == "$everything":
		if parts[1] == pid && !r.URL.Query().Has("_page") {
			return nil
		}
		return errCompartment
	case len(parts) == 2 && typ == "Patient":
		if parts[1] == pid {
			return nil
		}
		return errCompartment
	case len(parts) == 2 && record.ValidID(parts[1]):
		return g.ownedBy(r, typ, parts[1], 0, pid)
	case len(parts) == 4 && parts[2] == "_history" && typ != "Patient" && record.ValidID(parts[1]):
		v, ok := parseVersion(parts[3])
		if !ok {
			return errCompartment
		}
		return g.ownedBy(r, typ, parts[1], v, pid)
	case len(parts) == 4 && parts[2] == "_history" && typ == "Patient" && parts[1] == pid:
		return nil
	}
	return errCompartment
}

// pathSegments splits the escaped path after /fhir into unescaped
// segments, as the router does: an escaped "/" stays inside its segment.
func pathSegments(r *http.Request) ([]string, bool) {
	raw := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.EscapedPath(), "/fhir"), "/"), "/")
	out := make([]string, len(raw))
	for i, seg := range raw {
		u, err := url.PathUnescape(seg)
		if err != nil || strings.Contains(u, "/") {
			return nil, false
		}
		out[i] = u
	}
	return out, true
}

func parseVersion(s string) (int64, bool) {
	var n int64
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, n > 0
}

// ownedBy answers errCompartment when typ/id (at version, 0 = current)
// is not in Patient/pid; an unknown resource gets the same answer, so
// the gate is no oracle for what exists elsewhere.
func (g launchGate) ownedBy(r *http.Request, typ, id string, version int64, pid string) error {
	owner, err := g.rec.Owner(r.Context(), typ, id, version)
	if errors.Is(err, record.ErrNotFound) || err == nil && owner != ident.PatientOwner(pid) {
		return errCompartment
	}
	return err
}

// searchInCompartment allows a search that names the patient and cannot
// reach beyond the matches of that criterion.
func searchInCompartment(r *http.Request, typ, pid string) error {
	if lenient(r) {
		return errCompartment // unknown parameters would be dropped, the patient filter with them
	}
	q := r.URL.Query()
	named := false
	for k, vs := range q {
		name, _, _ := strings.Cut(k, ":")
		switch {
		case name == "_include" || name == "_revinclude" || name == "_has" || name == "_page" || strings.Contains(k, "."):
			return errCompartment
		case typ == "Patient" && k == "_id",
			typ != "Patient" && (k == "patient" || k == "patient:Patient" || k == "subject:Patient"):
			// These name a Patient whatever the value's form.
			if len(vs) != 1 || (vs[0] != pid && vs[0] != ident.PatientRef(pid).String()) || typ == "Patient" && vs[0] != pid {
				return errCompartment
			}
			named = true
		case typ != "Patient" && k == "subject":
			// subject may reference other types: a bare id would also
			// match Group/<id>. Only the typed reference names the patient.
			if len(vs) != 1 || vs[0] != ident.PatientRef(pid).String() {
				return errCompartment
			}
			named = true
		}
	}
	if !named {
		return errCompartment
	}
	return nil
}
