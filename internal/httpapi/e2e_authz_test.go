package httpapi_test

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata")

// actor is a principal of the matrix: a session of an account with one
// role (MFA verified), or the server's system API token.
type actor struct {
	role     string
	userID   string
	fhirUser string
	headers  apitest.H // credentials for reads
	wheaders apitest.H // credentials for writes (with the CSRF header)
}

// newActor creates an account with role and a practitioner (or, for the
// patient role, links it to patient pid) and starts an MFA session.
func newActor(t *testing.T, s *apitest.Server, role, pid string) actor {
	t.Helper()
	if role == "system" {
		return actor{role: role, headers: nil, wheaders: nil}
	}
	sq := s.App.Store.(*sqldb.Store)
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: id, Username: "u" + uniq(), Roles: []identity.Role{identity.Role(role)}}
	switch {
	case role == "patient" && strings.HasPrefix(pid, "RelatedPerson/"): // a proxy
		u.FHIRUser = pid
	case role == "patient":
		u.FHIRUser = "Patient/" + pid
	default:
		u.DisplayName = "Matrix " + role
		u.FHIRUser = "Practitioner/" + s.Create(t, map[string]any{"resourceType": "Practitioner", "active": true})
	}
	if _, err := sq.Users().Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(sq.Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec, _, err := m.Create(t.Context(), u.ID, role != "patient", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cookie := web.SessionCookie + "=" + string(sec)
	h := apitest.H{"Authorization": apitest.NoAuth, "Cookie": cookie}
	w := apitest.H{"Authorization": apitest.NoAuth, "Cookie": cookie, httpapi.CSRFHeader: session.CSRFToken(string(sec))}
	return actor{role: role, userID: u.ID, fhirUser: u.FHIRUser, headers: h, wheaders: w}
}

// The matrix's dimensions.
var (
	matrixRoles        = []string{"physician", "nurse", "front-desk", "billing", "researcher", "privacy-officer", "security-admin", "auditor", "patient", "system"}
	matrixVariants     = []string{"care-team", "no-relation", "break-glass", "consent-denied", "sensitive", "hiv", "consent-label", "joint"}
	matrixTypes        = []string{"Observation", "Patient", "Coverage"}
	matrixInteractions = []string{"read", "vread", "search", "search-count", "history", "history-type", "history-system", "everything",
		"create", "conditional-create", "update", "delete", "batch-get", "transaction-post", "conditional-reference"}
)

// customLabel is a security label outside the built-in list, which the
// consent-label variant's Consent denies to everyone.
const customLabel = "CONFIDENTIAL-X"

// variantLabel is the security label the variant's resources carry.
func variantLabel(variant string) string {
	switch variant {
	case "sensitive":
		return "42CFRPart2"
	case "hiv":
		return "HIV"
	case "consent-label":
		return customLabel
	}
	return ""
}

// scenario is one variant's data for one actor.
type scenario struct {
	pid     string            // the patient
	other   string            // the joint variant's second patient, else ""
	targets map[string]string // type -> id of the resource read
	since   string            // just before the targets were created (history)
}

func coverage(pid string) map[string]any {
	return map[string]any{"resourceType": "Coverage", "status": "active",
		"beneficiary": map[string]any{"reference": "Patient/" + pid},
		"payor":       []any{map[string]any{"display": "Payer"}}}
}

func labelled(res map[string]any, code string) map[string]any {
	if code != "" {
		res["meta"] = map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code}}}
	}
	return res
}

// careTeam puts practitioner ref on pid's care team.
func careTeam(t *testing.T, s *apitest.Server, pid, ref string) {
	t.Helper()
	s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active",
		"subject":     map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"member": map[string]any{"reference": ref}}}})
}

func consentDeny(pid, actorRef string) map[string]any {
	return map[string]any{"resourceType": "Consent", "status": "active",
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + pid},
		"provision": map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
			"actor": []any{map[string]any{"role": map[string]any{"coding": []any{map[string]any{"code": "PRCP"}}}, "reference": map[string]any{"reference": actorRef}}}}}},
	}
}

// setup builds a variant's data for a (with the system token).
func setup(t *testing.T, s *apitest.Server, a actor, variant, ownPID string) scenario {
	t.Helper()
	pid := ownPID
	if a.role != "patient" || variant == "no-relation" || variant == "break-glass" {
		pid = s.Create(t, patient(uniq(), nil))
	}
	label := variantLabel(variant)
	sc := scenario{pid: pid, since: time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)}
	if variant == "joint" {
		sc.other = s.Create(t, patient(uniq(), nil))
	}
	sc.targets = map[string]string{
		"Patient":     pid,
		"Observation": s.Create(t, labelled(jointly(observation(pid, nil), sc.other), label)),
		"Coverage":    s.Create(t, labelled(jointly(coverage(pid), sc.other), label)),
	}
	if variant == "consent-label" {
		s.Create(t, consentDenyLabel(pid, customLabel))
	}
	if pid == ownPID {
		// The patient's own record, made before this variant: a new
		// version puts it among the versions since sc.since (history).
		r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
		s.Do(t, "PUT", "/fhir/Patient/"+pid, r.JSON, nil).Want(t, http.StatusOK)
	}
	if a.role == "system" {
		if variant == "consent-denied" {
			s.Create(t, consentDeny(pid, "Practitioner/someone"))
		}
		return sc
	}
	if a.role == "patient" {
		if variant == "consent-denied" {
			s.Create(t, consentDeny(pid, "Practitioner/someone"))
		}
		return sc
	}
	switch variant {
	case "care-team", "sensitive", "hiv", "consent-label", "joint":
		careTeam(t, s, pid, a.fhirUser)
	case "consent-denied":
		careTeam(t, s, pid, a.fhirUser)
		s.Create(t, consentDeny(pid, a.fhirUser))
	case "break-glass":
		if a.fhirUser != "" {
			body := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "reason", "valueCode": "ETREAT"},
				map[string]any{"name": "text", "valueString": "matrix emergency"}}}
			r := s.Do(t, "POST", "/fhir/Patient/"+pid+"/$break-glass", body, a.wheaders)
			if r.Status != http.StatusCreated && r.Status != http.StatusForbidden {
				t.Fatalf("break-glass for %s: %s", a.role, r)
			}
		}
	}
	return sc
}

// jointly makes res name other too (a second patient), when other != "".
func jointly(res map[string]any, other string) map[string]any {
	if other == "" {
		return res
	}
	switch res["resourceType"] {
	case "Observation":
		res["performer"] = []any{map[string]any{"reference": "Patient/" + other}}
	case "Coverage":
		res["subscriber"] = map[string]any{"reference": "Patient/" + other}
	}
	return res
}

// consentDenyLabel is a patient-privacy Consent denying a label to everyone.
func consentDenyLabel(pid, label string) map[string]any {
	c := consentDeny(pid, "")
	c["provision"] = map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
		"securityLabel": []any{map[string]any{"system": "urn:phivault:test:labels", "code": label}}}}}
	return c
}

// fresh creates a new resource of typ for pid (targets of update/delete).
func fresh(t *testing.T, s *apitest.Server, typ string, sc scenario, label string) (string, map[string]any) {
	t.Helper()
	var res map[string]any
	switch typ {
	case "Observation":
		res = jointly(observation(sc.pid, nil), sc.other)
	case "Coverage":
		res = jointly(coverage(sc.pid), sc.other)
	case "Patient":
		res = patient(uniq(), nil)
	}
	res = labelled(res, label)
	id := s.Create(t, res)
	res["id"] = id
	return id, res
}

// try runs one interaction and reports whether it was allowed.
func try(t *testing.T, s *apitest.Server, a actor, variant string, sc scenario, typ, inter string) bool {
	t.Helper()
	label := variantLabel(variant)
	target := sc.targets[typ]
	ok := func(r *apitest.Response, want int) bool {
		if r.Status >= 500 {
			t.Fatalf("%s %s %s %s: %s", a.role, variant, typ, inter, r)
		}
		if r.Status == want {
			return true
		}
		if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
			t.Fatalf("%s %s %s %s: status %d, want %d, 403 or 404: %s", a.role, variant, typ, inter, r.Status, want, r)
		}
		if r.JSON["resourceType"] != "OperationOutcome" {
			t.Fatalf("%s %s %s %s: a denial that is not an OperationOutcome: %s", a.role, variant, typ, inter, r)
		}
		return false
	}
	contains := func(r *apitest.Response, ref string) bool {
		if r.Status != http.StatusOK {
			return ok(r, http.StatusOK)
		}
		return slices.Contains(r.IDs(), ref)
	}
	switch inter {
	case "read":
		return ok(s.Do(t, "GET", "/fhir/"+typ+"/"+target, nil, a.headers), http.StatusOK)
	case "vread":
		return ok(s.Do(t, "GET", "/fhir/"+typ+"/"+target+"/_history/1", nil, a.headers), http.StatusOK)
	case "search":
		return contains(s.Do(t, "GET", "/fhir/"+typ+"?_id="+target, nil, a.headers), typ+"/"+target)
	case "search-count":
		r := s.Do(t, "GET", "/fhir/"+typ+"?_id="+target+"&_summary=count", nil, a.headers)
		if r.Status != http.StatusOK {
			return ok(r, http.StatusOK)
		}
		n, _ := r.Total()
		return n == 1
	case "history":
		r := s.Do(t, "GET", "/fhir/"+typ+"/"+target+"/_history", nil, a.headers)
		return ok(r, http.StatusOK) && len(r.Entries()) > 0
	case "history-type", "history-system":
		path := "/fhir/" + typ + "/_history"
		if inter == "history-system" {
			path = "/fhir/_history"
		}
		r := s.Do(t, "GET", path+"?_count=1000&_since="+url.QueryEscape(sc.since), nil, a.headers)
		if r.Status != http.StatusOK {
			return ok(r, http.StatusOK)
		}
		for _, e := range r.Entries() {
			if u, _ := e["fullUrl"].(string); strings.HasSuffix(u, "/"+typ+"/"+target) {
				return true
			}
		}
		return false
	case "conditional-create":
		_, res := fresh(t, s, typ, sc, label)
		delete(res, "id")
		h := apitest.H{"If-None-Exist": "_id=" + target}
		for k, v := range a.wheaders {
			h[k] = v
		}
		r := s.Do(t, "POST", "/fhir/"+typ, res, h)
		if r.Status == http.StatusCreated {
			return false // no visible match: a new resource
		}
		return ok(r, http.StatusOK) && r.ID() == target
	case "conditional-reference":
		_, res := fresh(t, s, "Observation", sc, "")
		delete(res, "id")
		res["focus"] = []any{map[string]any{"reference": typ + "?_id=" + target}}
		b := bundle("transaction", entry("urn:uuid:"+uuidLike(), "POST", "Observation", res, nil))
		r := s.Do(t, "POST", "/fhir", b, a.wheaders)
		if r.Status == http.StatusPreconditionFailed {
			return false // resolved to nothing the caller may see
		}
		return ok(r, http.StatusOK)
	case "everything":
		return contains(s.Do(t, "GET", "/fhir/Patient/"+sc.pid+"/$everything", nil, a.headers), typ+"/"+target)
	case "create":
		_, res := fresh(t, s, typ, sc, label)
		delete(res, "id")
		return ok(s.Do(t, "POST", "/fhir/"+typ, res, a.wheaders), http.StatusCreated)
	case "update":
		id, res := fresh(t, s, typ, sc, label)
		if typ == "Patient" {
			id = sc.pid
			r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
			res = r.JSON
		}
		return ok(s.Do(t, "PUT", "/fhir/"+typ+"/"+id, res, a.wheaders), http.StatusOK)
	case "delete":
		id, _ := fresh(t, s, typ, sc, label)
		if typ == "Patient" {
			id = sc.pid
		}
		allowed := ok(s.Do(t, "DELETE", "/fhir/"+typ+"/"+id, nil, a.wheaders), http.StatusNoContent)
		if allowed && typ == "Patient" {
			// Undo, so later interactions still find the patient.
			r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/1", nil, nil).Want(t, http.StatusOK)
			s.Do(t, "PUT", "/fhir/Patient/"+id, r.JSON, nil).Want(t, http.StatusOK, http.StatusCreated)
		}
		return allowed
	case "batch-get":
		b := bundle("batch", entry("", "GET", typ+"/"+target, nil, nil))
		r := s.Do(t, "POST", "/fhir", b, a.wheaders)
		if r.Status != http.StatusOK {
			return ok(r, http.StatusOK)
		}
		st := statuses(r)
		return len(st) == 1 && strings.HasPrefix(st[0], "200")
	case "transaction-post":
		_, res := fresh(t, s, typ, sc, label)
		delete(res, "id")
		b := bundle("transaction", entry("urn:uuid:"+uuidLike(), "POST", typ, res, nil))
		return ok(s.Do(t, "POST", "/fhir", b, a.wheaders), http.StatusOK)
	}
	t.Fatalf("unknown interaction %s", inter)
	return false
}

func uuidLike() string {
	u := uniq() + uniq() + uniq()
	return u[:8] + "-" + u[8:12] + "-4" + u[13:16] + "-8" + u[17:20] + "-" + u[20:32]
}

const matrixGolden = "testdata/authz-matrix.golden"

// TestAuthzMatrix runs every default role × relationship variant × FHIR
// interaction × resource kind through the HTTP API on both drivers and
// compares each allow/deny with the golden table (testdata), which is
// the specification of the default policies. Any allow the table does
// not list fails the test as an unexpected allow.
func TestAuthzMatrix(t *testing.T) {
	want := readMatrix(t)
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		got := map[string]string{}
		var lines []string
		for _, role := range matrixRoles {
			own := s.Create(t, patient(uniq(), nil))
			a := newActor(t, s, role, own)
			for _, v := range matrixVariants {
				sc := setup(t, s, a, v, own)
				for _, typ := range matrixTypes {
					for _, inter := range matrixInteractions {
						key := strings.Join([]string{role, v, typ, inter}, " ")
						res := "deny"
						if try(t, s, a, v, sc, typ, inter) {
							res = "allow"
						}
						got[key] = res
						lines = append(lines, key+" "+res)
					}
				}
			}
		}
		if *updateGolden && s.Driver == "sqlite" {
			writeMatrix(t, lines)
			return
		}
		var unexpectedAllow, unexpectedDeny []string
		for k, g := range got {
			w, ok := want[k]
			switch {
			case !ok:
				t.Errorf("%s: not in the golden table", k)
			case g == "allow" && w == "deny":
				unexpectedAllow = append(unexpectedAllow, k)
			case g == "deny" && w == "allow":
				unexpectedDeny = append(unexpectedDeny, k)
			}
		}
		slices.Sort(unexpectedAllow)
		slices.Sort(unexpectedDeny)
		if len(unexpectedAllow) > 0 {
			t.Errorf("%d UNEXPECTED ALLOWS:\n%s", len(unexpectedAllow), strings.Join(unexpectedAllow, "\n"))
		}
		if len(unexpectedDeny) > 0 {
			t.Errorf("%d unexpected denials:\n%s", len(unexpectedDeny), strings.Join(unexpectedDeny, "\n"))
		}
		if len(got) != len(want) {
			t.Errorf("ran %d cells, the golden table has %d", len(got), len(want))
		}
	})
}

func readMatrix(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(matrixGolden)
	if os.IsNotExist(err) && *updateGolden {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 || (f[4] != "allow" && f[4] != "deny") {
			t.Fatalf("%s: bad line %q", matrixGolden, line)
		}
		out[strings.Join(f[:4], " ")] = f[4]
	}
	return out
}

func writeMatrix(t *testing.T, lines []string) {
	t.Helper()
	head := `# The authorization matrix of the default policies: role, relationship
# variant, resource type, FHIR interaction, expected decision. It is the
# specification TestAuthzMatrix holds the HTTP API to, on both drivers.
# Regenerate with: go test ./internal/httpapi -run TestAuthzMatrix -update
# and review every changed line: an "allow" is a grant of PHI.
#
# Variants: care-team (the user's practitioner is on the patient's
# CareTeam), no-relation, break-glass (the user opened a grant on the
# patient first; refused for roles that may not), consent-denied (on the
# care team, but a patient-privacy Consent denies that practitioner),
# sensitive (on the care team; the resources carry 42CFRPart2), hiv (on
# the care team; the resources carry HIV, a built-in sensitive label),
# consent-label (on the care team; the resources carry CONFIDENTIAL-X, a
# label outside the built-in list, which the patient's Consent denies to
# everyone), joint (on the care team; the Observation and Coverage also
# name a second, unrelated patient). For the patient role, every variant
# but no-relation and break-glass is its own record (its own Consent
# binds others, not the patient), the others another patient's.
#
# Interactions: read, vread, search (by _id), search-count (_summary=count
# by _id: 1 is an allow), history (instance), history-type and
# history-system (the target among the versions since it was created),
# everything, create, conditional-create (If-None-Exist _id=target: an
# allow returns the target), update, delete, batch-get, transaction-post,
# conditional-reference (a transaction whose Observation refers to
# Type?_id=target: an allow resolves it).
`
	if err := os.MkdirAll(filepath.Dir(matrixGolden), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(matrixGolden, []byte(head+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Println("wrote", matrixGolden)
}
