package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

// accountID is u's account id.
func (e *env) accountID(t *testing.T, u *user) string {
	t.Helper()
	a, err := e.App.Store.(*sqldb.Store).Users().ByUsername(t.Context(), u.Username)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// patientSession signs a patient account in (password only).
func (e *env) patientSession(t *testing.T, u *user) *webSession {
	t.Helper()
	res, err := e.App.Login.Login(t.Context(), u.Username, u.Password, setupAddr)
	if err != nil || res.Session == nil {
		t.Fatalf("patient login: %v %+v", err, res)
	}
	s := e.sessionFor
	_ = s
	return &webSession{e: e, secret: res.Session.Secret.Reveal(), csrf: res.Session.CSRF,
		c: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}}
}

// TestFrontDesk: the front desk registers a patient (with a record
// number), edits demographics (what its masked view hides is kept), and
// gives a newly invited physician the patient by adding them to the
// care team: the physician then finds the patient on their worklist and
// opens the chart, the assignment is audited, and the patient sees it
// in "Who accessed my record". Other roles are kept out.
func TestFrontDesk(t *testing.T) {
	e := start(t, "sqlite")
	clerk := e.addUser(t, "desk.reg", "Reggie Desk", true, identity.RoleFrontDesk)
	newDoc := e.addUser(t, "dr.new", "Nora New", true, identity.RolePhysician)
	s := e.sessionFor(t, clerk)

	if p := s.get(t, "/desk"); p.Status != http.StatusOK || !strings.Contains(p.Body, `href="/desk/register"`) {
		t.Fatalf("desk home: %d", p.Status)
	}
	if p := s.post(t, "/desk/register", url.Values{"family": {"Newcomer"}, "birthdate": {"03/04/1990"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "YYYY-MM-DD") {
		t.Errorf("a bad birth date: %d", p.Status)
	}
	reg := s.post(t, "/desk/register", url.Values{"family": {"Newcomer"}, "given": {"Nia Rose"}, "birthdate": {"1990-03-04"}, "gender": {"female"},
		"phone": {"555-0100"}, "line": {"1 Main St"}, "city": {"Springfield"}, "postal": {"12345"}})
	m := regexp.MustCompile(`^/desk/patients/([A-Za-z0-9.-]+)$`).FindStringSubmatch(reg.Location)
	if reg.Status != http.StatusSeeOther || m == nil {
		t.Fatalf("register: %d %q\n%s", reg.Status, reg.Location, reg.Body)
	}
	pid := m[1]
	page := s.get(t, reg.Location)
	if !strings.Contains(page.Body, "Newcomer, Nia Rose") || !regexp.MustCompile(`id="desk-mrn">M\d{9}<`).MatchString(page.Body) {
		t.Errorf("the registered patient's page:\n%s", page.Body)
	}
	stored := e.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, 200).JSON
	if stored["birthDate"] != "1990-03-04" || stored["gender"] != "female" {
		t.Errorf("stored patient %v", stored)
	}

	// Editing keeps what the front desk's masked view hides (an SSN).
	ssnPid := e.storePatient(t, "Maskedman", "1980-01-01", nil)
	edit := s.get(t, "/desk/patients/"+ssnPid)
	if strings.Contains(edit.Body, "123-45-6789") {
		t.Errorf("the front desk sees the SSN")
	}
	version := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(edit.Body)[1]
	form := url.Values{"version": {version}, "family": {"Maskedman-Smith"}, "given": {"Lou"}, "birthdate": {"1980-01-01"}, "gender": {"female"}}
	if p := s.follow(t, "/desk/patients/"+ssnPid, form); !strings.Contains(p.Body, "Maskedman-Smith, Lou") || !strings.Contains(p.Body, "were saved") {
		t.Errorf("after saving:\n%s", p.Body)
	}
	after := e.Do(t, "GET", "/fhir/Patient/"+ssnPid, nil, nil).Want(t, 200)
	if !strings.Contains(string(after.Body), "123-45-6789") || !strings.Contains(string(after.Body), "Maskedman-Smith") {
		t.Errorf("the update lost the SSN or the name: %s", after.Body)
	}
	if p := s.post(t, "/desk/patients/"+ssnPid, form); p.Status != http.StatusConflict {
		t.Errorf("a stale form saved: %d", p.Status)
	}

	// The new physician has no relationship yet; the desk assigns them.
	d := e.sessionFor(t, newDoc)
	if p := d.get(t, "/patients/"+pid); p.Status != http.StatusForbidden {
		t.Fatalf("the new physician opens the chart before the assignment: %d", p.Status)
	}
	if p := s.post(t, "/desk/patients/"+pid+"/care-team", url.Values{"clinician": {e.accountID(t, clerk)}}); p.Status != http.StatusBadRequest {
		t.Errorf("assigning a non-clinician: %d", p.Status)
	}
	if !strings.Contains(page.Body, `<option value="`+e.accountID(t, newDoc)+`">Nora New (physician)</option>`) {
		t.Errorf("the new physician is not offered")
	}
	as := s.follow(t, "/desk/patients/"+pid+"/care-team", url.Values{"clinician": {e.accountID(t, newDoc)}, "team": {"Family medicine"}})
	if !strings.Contains(as.Body, "was added to the patient") {
		t.Errorf("after the assignment:\n%s", as.Body)
	}
	if body := d.get(t, "/patients").Body; !strings.Contains(section(body, "my-patients"), "Newcomer") || !strings.Contains(section(body, "my-patients"), "Family medicine") {
		t.Errorf("the physician's worklist lacks the assigned patient")
	}
	if p := d.get(t, "/patients/"+pid); p.Status != http.StatusOK {
		t.Errorf("the physician's chart after the assignment: %d", p.Status)
	}

	// Audited with the patient; the patient sees it.
	evs, err := e.App.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, ev := range evs {
		audited = audited || ev.Action == audit.ActionCreate && ev.Agent.User == e.accountID(t, clerk) &&
			slices.Contains(ev.Patients, "Patient/"+pid) && slices.ContainsFunc(ev.Entities, func(x string) bool { return strings.HasPrefix(x, "CareTeam/") })
	}
	if !audited {
		t.Errorf("no audited CareTeam create by the front desk with the patient")
	}
	pat := e.addAccount(t, identity.User{Username: "nia.newcomer", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)
	ps := e.patientSession(t, pat)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := section(ps.get(t, "/portal/access").Body, "access-list")
		if strings.Contains(body, "added your care team") && strings.Contains(body, "Reggie Desk") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the patient's access history lacks the assignment:\n%s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The patient sees who was given access: the clinician, by name,
	// on "Your care team" (pentest: the history named only the clerk).
	if body := section(ps.get(t, "/portal").Body, "care-teams"); !strings.Contains(body, "Nora New") {
		t.Errorf("the patient's care team does not name the assigned clinician:\n%s", body)
	}

	// Other roles are kept out of the desk.
	if p := d.get(t, "/desk"); p.Status != http.StatusForbidden {
		t.Errorf("a physician at /desk: %d", p.Status)
	}
	if p := d.post(t, "/desk/register", url.Values{"family": {"X"}, "birthdate": {"2000-01-01"}}); p.Status != http.StatusForbidden {
		t.Errorf("a physician registers: %d", p.Status)
	}
	if p := ps.get(t, "/desk/patients/"+pid); p.Status != http.StatusForbidden {
		t.Errorf("a patient at the desk: %d", p.Status)
	}
	_ = web.SessionCookie
}
