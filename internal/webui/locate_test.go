package webui_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// callerOf is the record caller of u's signed-in session, as the web UI
// builds it (site.Caller): its own authorization guard.
func (e *env) callerOf(t *testing.T, u *user) record.Caller {
	t.Helper()
	acct, err := e.App.Store.(*sqldb.Store).Users().ByUsername(t.Context(), u.Username)
	if err != nil {
		t.Fatal(err)
	}
	roles := make([]string, 0, len(acct.Roles))
	for _, r := range acct.Roles {
		roles = append(roles, string(r))
	}
	p := authn.Principal{Kind: authn.KindSession, ID: acct.ID, Name: acct.Username, Roles: roles, MFA: true, SessionID: "ses_" + acct.ID}
	return record.Caller{Agent: audit.Agent{User: acct.ID, Client: "webui", Session: p.SessionID}, Purpose: "TREAT", Guard: e.App.Authz.For(p)}
}

// storePatient stores a Patient of family name family (and meta, if
// given) and returns its id.
func (e *env) storePatient(t *testing.T, family, birth string, meta map[string]any) string {
	t.Helper()
	res := fhir.Resource{"resourceType": "Patient", "gender": "female", "birthDate": birth,
		"name":       []any{map[string]any{"family": family, "given": []any{"Lou"}}},
		"identifier": []any{map[string]any{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "123-45-6789"}}}
	if meta != nil {
		res["meta"] = meta
	}
	st, _, err := e.App.Record.Create(t.Context(), trusted, res, "")
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

// TestLocateGuarantee: a look-up (record.Service.Locate, the search
// page's "Outside your care") tells a physician or a nurse the name and
// birth date of the patients a name search matches outside their
// relationships, and nothing else: never a patient hidden by a Consent,
// one whose Patient carries a restricted or sensitive label, a VIP, or
// one already under their care; every other role is refused. Each
// look-up is audited, naming only the patients it told of.
func TestLocateGuarantee(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) { locateGuarantee(t, driver) })
	}
}

func locateGuarantee(t *testing.T, driver string) {
	e := start(t, driver)
	doc := e.addUser(t, "dr.locate", "Lee Locate", true, identity.RolePhysician)
	nurse := e.addUser(t, "rn.locate", "Nia Nurse", true, identity.RoleNurse)
	const family = "Findable"
	open := e.storePatient(t, family, "1971-01-01", nil)
	mine := e.storePatient(t, family, "1972-02-02", nil)
	e.careTeam(t, mine, doc.FHIRUser)
	hidden := e.storePatient(t, family, "1973-03-03", nil)
	if _, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "Consent", "status": "active",
		"scope":     map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category":  []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":   map[string]any{"reference": "Patient/" + hidden},
		"provision": map[string]any{"type": "deny"}}, ""); err != nil {
		t.Fatal(err)
	}
	label := func(system, code string) map[string]any {
		return map[string]any{"security": []any{map[string]any{"system": system, "code": code}}}
	}
	restricted := e.storePatient(t, family, "1974-04-04", label("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"))
	psy := e.storePatient(t, family, "1975-05-05", label("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSY"))
	part2 := e.storePatient(t, family, "1976-06-06", label("http://terminology.hl7.org/CodeSystem/v3-ActCode", "42CFRPart2"))
	vip := e.storePatient(t, family, "1977-07-07", map[string]any{"tag": []any{map[string]any{"code": "VIP"}}})
	never := []string{hidden, restricted, psy, part2, vip}

	desk := e.addUser(t, "desk.locate", "Dee Desk", true, identity.RoleFrontDesk)
	privacy := e.addUser(t, "po.locate", "Pat Privacy", true, identity.RolePrivacyOfficer)
	auditor := e.addUser(t, "aud.locate", "Al Auditor", true, identity.RoleAuditor)
	billing := e.addUser(t, "bill.locate", "Bo Billing", true, identity.RoleBilling)
	admin := e.addUser(t, "sec.locate", "Sam Admin", true, identity.RoleSecurityAdmin)
	researcher := e.addUser(t, "res.locate", "Rae Search", true, identity.RoleResearcher)
	pat := e.addAccount(t, identity.User{Username: "lou.findable", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + open}, false)

	byName := url.Values{"name": {family}}
	located := func(t *testing.T, u *user, vals url.Values) []string {
		t.Helper()
		res, err := e.App.Record.Locate(t.Context(), e.callerOf(t, u), vals)
		if err != nil {
			t.Fatalf("%s: locate: %v", u.Username, err)
		}
		var ids []string
		for _, p := range res.Patients {
			var m map[string]any
			if err := json.Unmarshal(p.JSON, &m); err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !slices.Equal(keys, []string{"birthDate", "id", "name", "resourceType"}) {
				t.Errorf("%s: a located patient shows %v, want id, name and birth date only", u.Username, keys)
			}
			ids = append(ids, p.ID)
		}
		sort.Strings(ids)
		return ids
	}
	sorted := func(ids ...string) []string { s := slices.Clone(ids); sort.Strings(s); return s }

	t.Run("clinicians", func(t *testing.T) {
		if got, want := located(t, doc, byName), sorted(open); !slices.Equal(got, want) {
			t.Errorf("physician locates %v, want %v (only the unrestricted stranger)", got, want)
		}
		if got, want := located(t, nurse, byName), sorted(open, mine); !slices.Equal(got, want) {
			t.Errorf("nurse locates %v, want %v", got, want)
		}
		// A hidden or restricted patient answers exactly as a non-match.
		for _, bd := range []string{"1973-03-03", "1974-04-04", "1975-05-05", "1976-06-06", "1977-07-07", "1999-09-09"} {
			if got := located(t, doc, url.Values{"name": {family}, "birthdate": {bd}}); len(got) != 0 {
				t.Errorf("birth date %s: located %v, want none", bd, got)
			}
		}
	})

	t.Run("other roles", func(t *testing.T) {
		for _, u := range []*user{desk, privacy, auditor, billing, admin, researcher, pat} {
			_, err := e.App.Record.Locate(t.Context(), e.callerOf(t, u), byName)
			var re *record.Error
			if !errors.As(err, &re) || record.StatusCode(re) != http.StatusForbidden {
				t.Errorf("%s: locate answered %v, want 403", u.Username, err)
			}
		}
	})

	t.Run("queries", func(t *testing.T) {
		for _, vals := range []url.Values{{"birthdate": {"1971-01-01"}}, {"name": {"Fi"}}, {"name": {family, " F "}}, {"name": {family}, "identifier": {"123-45-6789"}}, {"name": {family}, "gender": {"female"}}} {
			_, err := e.App.Record.Locate(t.Context(), e.callerOf(t, doc), vals)
			if !errors.Is(err, record.ErrLocateQuery) {
				t.Errorf("%v: %v, want ErrLocateQuery", vals, err)
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		evs, err := e.App.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var allowed, denied int
		for _, ev := range evs {
			if ev.Action != audit.ActionLocate {
				continue
			}
			for _, id := range never {
				if slices.Contains(ev.Patients, "Patient/"+id) {
					t.Errorf("a locate event names a patient it must not tell of: %+v", ev)
				}
			}
			if ev.Query != "" && ev.Query != "Patient?name" && ev.Query != "Patient?name&birthdate" && ev.Query != "Patient?birthdate&name" {
				t.Errorf("locate event query %q", ev.Query)
			}
			switch ev.Outcome {
			case audit.OutcomeDenied:
				denied++
			default:
				allowed++
				if ev.Agent.User != "" && slices.Contains(ev.Patients, "Patient/"+mine) && ev.Agent.Session == e.callerOf(t, doc).Agent.Session {
					t.Errorf("the physician's look-up names their own patient")
				}
			}
		}
		// 2 name look-ups and 6 by birth date; 7 refused roles.
		if allowed != 8 || denied != 7 {
			t.Errorf("locate events: %d allowed, %d denied; want 8 and 7", allowed, denied)
		}
		var told bool
		for _, ev := range evs {
			told = told || ev.Action == audit.ActionLocate && slices.Contains(ev.Patients, "Patient/"+open)
		}
		if !told {
			t.Errorf("no locate event names the located patient")
		}
	})
}
