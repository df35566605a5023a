package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// section returns the HTML of the element with id (up to its
// </section>), or "".
func section(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</section>")
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// TestWorklist: a physician's start page lists the patients of their
// care teams and of their encounters in progress, and the charts they
// opened last (theirs alone); nobody else's patients; no patient data in
// any link.
func TestWorklist(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.work", "Wren Work", true, identity.RolePhysician)
	other := e.addUser(t, "dr.other", "Otto Other", true, identity.RolePhysician)
	teamP := e.storePatient(t, "Teamington", "1960-01-01", nil)
	encP := e.storePatient(t, "Visitorson", "1961-01-01", nil)
	stranger := e.storePatient(t, "Strangewood", "1962-01-01", nil)
	if _, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "CareTeam", "status": "active", "name": "Ward 3 team",
		"subject":     map[string]any{"reference": "Patient/" + teamP},
		"participant": []any{map[string]any{"member": map[string]any{"reference": doc.FHIRUser}}}}, ""); err != nil {
		t.Fatal(err)
	}
	e.careTeam(t, stranger, other.FHIRUser)
	if _, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "Encounter", "status": "in-progress",
		"class":       map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER", "display": "emergency"},
		"subject":     map[string]any{"reference": "Patient/" + encP},
		"period":      map[string]any{"start": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)},
		"participant": []any{map[string]any{"individual": map[string]any{"reference": doc.FHIRUser}}}}, ""); err != nil {
		t.Fatal(err)
	}

	s := e.sessionFor(t, doc)
	home := s.get(t, "/patients")
	if home.Status != http.StatusOK {
		t.Fatalf("GET /patients: %d", home.Status)
	}
	mine := section(home.Body, "my-patients")
	if !strings.Contains(mine, "Teamington") || !strings.Contains(mine, "Ward 3 team") || !strings.Contains(mine, `href="/patients/`+teamP+`"`) {
		t.Errorf("my patients:\n%s", mine)
	}
	encs := section(home.Body, "current-encounters")
	if !strings.Contains(encs, "Visitorson") || !strings.Contains(encs, "emergency") || !strings.Contains(encs, "in-progress") {
		t.Errorf("current encounters:\n%s", encs)
	}
	if strings.Contains(home.Body, "Strangewood") || strings.Contains(home.Body, `id="recent-patients"`) {
		t.Errorf("the start page shows another's patient or a recent list before any chart was opened")
	}

	if p := s.get(t, "/patients/"+encP); p.Status != http.StatusOK {
		t.Fatalf("chart of an encounter patient: %d", p.Status)
	}
	if p := s.get(t, "/patients/"+teamP); p.Status != http.StatusOK {
		t.Fatalf("chart of a care-team patient: %d", p.Status)
	}
	home = s.get(t, "/patients")
	recent := section(home.Body, "recent-patients")
	ti, vi := strings.Index(recent, "Teamington"), strings.Index(recent, "Visitorson")
	if ti < 0 || vi < 0 || ti > vi {
		t.Errorf("recently opened, newest first:\n%s", recent)
	}
	// Another clinician's recent list is their own.
	o := e.sessionFor(t, other)
	if body := o.get(t, "/patients").Body; strings.Contains(body, "Teamington") || strings.Contains(body, "Visitorson") {
		t.Errorf("another physician sees this one's worklist")
	}
	for _, href := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(home.Body, -1) {
		if u, err := url.Parse(href[1]); err != nil || u.RawQuery != "" || strings.ContainsAny(href[1], " ") {
			t.Errorf("link %q carries a query", href[1])
		}
	}
}

// TestSearchOutsideCare: the search page shows a stranger found by name
// under "Outside your care" (name and birth date, with the way to break
// the glass) instead of "no patient matches"; a consent-hidden or
// restricted namesake answers exactly as no match.
func TestSearchOutsideCare(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.search", "Sol Search", true, identity.RolePhysician)
	stranger := e.storePatient(t, "Farawayton", "1980-02-03", nil)
	e.storePatient(t, "Hiddenfield", "1981-02-03", map[string]any{"security": []any{map[string]any{
		"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}}})
	s := e.sessionFor(t, doc)

	res := s.follow(t, "/patients/search", url.Values{"name": {"Farawayton"}})
	out := section(res.Body, "elsewhere")
	if !strings.Contains(out, "Farawayton") || !strings.Contains(out, "1980-02-03") || !strings.Contains(out, `href="/patients/`+stranger+`"`) {
		t.Fatalf("outside your care:\n%s", res.Body)
	}
	if strings.Contains(out, "123-45-6789") || strings.Contains(out, "female") {
		t.Errorf("a located patient shows more than name and birth date:\n%s", out)
	}
	if strings.Contains(res.Body, "No patient matches") {
		t.Errorf("the page still says no patient matches")
	}
	// The link leads to the break-the-glass form.
	if p := s.get(t, "/patients/"+stranger); p.Status != http.StatusForbidden || !strings.Contains(p.Body, `action="/patients/`+stranger+`/break-glass"`) {
		t.Errorf("the stranger's chart: %d, no break-the-glass form", p.Status)
	}

	// The patient sees the look-up in "Who accessed my record".
	pat := e.addAccount(t, identity.User{Username: "far.patient", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + stranger}, false)
	ps := e.patientSession(t, pat)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := section(ps.get(t, "/portal/access").Body, "access-list")
		if strings.Contains(body, "looked you up by name outside your care") && strings.Contains(body, "Sol Search") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the patient's access history lacks the look-up:\n%s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}

	hidden := s.follow(t, "/patients/search", url.Values{"name": {"Hiddenfield"}})
	none := s.follow(t, "/patients/search", url.Values{"name": {"Nobodyatall"}})
	strip := func(b string) string { return section(b, "results-title") }
	if strings.Contains(hidden.Body, "Hiddenfield</td>") || strip(hidden.Body) != strip(none.Body) || strings.Contains(hidden.Body, `id="elsewhere"`) {
		t.Errorf("a restricted namesake does not answer as no match:\n%s", strip(hidden.Body))
	}
}
