package webui_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/web"
)

// monitorService is the app's monitoring alerts service.
func (e *env) monitorService(t testing.TB) *alerts.Service {
	t.Helper()
	m, err := e.App.Monitor()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readLeaf has doc read patient pid's Patient resource (through the
// record service with doc's own authorization, after putting doc on the
// care team) and returns that access's position in the audit log.
func (e *env) readLeaf(t *testing.T, doc *user, pid string) int64 {
	t.Helper()
	e.careTeam(t, pid, doc.FHIRUser)
	c := e.callerOf(t, doc)
	if _, err := e.App.Record.Read(t.Context(), c, "Patient", pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.App.Transparency().Integrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		es, err := e.App.AuditIndex.Search(t.Context(), index.Caller{Agent: trusted.Agent, Purpose: "HOPERAT"},
			index.Filter{Patient: "Patient/" + pid, Agent: c.Agent.User, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range es {
			if x.Event.Action == audit.ActionRead {
				return x.Index
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clinician's read of the patient is not in the audit index")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// seedAlert saves one alert of category c about doc reading pid (whose
// access is the audit leaf leaf) through the monitoring service, and
// returns its id.
func (e *env) seedAlert(t *testing.T, doc *user, pid string, leaf int64, c monitor.Category, score float64, explanation string) string {
	t.Helper()
	now := time.Now().UTC()
	ref := "leaf/" + itoa(leaf)
	a := monitor.Alert{Key: string(c) + "|" + doc.FHIRUser + "|Patient/" + pid, Source: alerts.SourcePhivault, User: doc.FHIRUser,
		Patients: []string{"Patient/" + pid}, Category: c, Categories: []monitor.Category{c, monitor.CatUnexplained}, Score: score,
		Severity: monitor.SeverityHigh, Explanation: explanation, First: now.Add(-time.Minute), Last: now,
		Evidence: monitor.Evidence{
			Accesses: []monitor.AccessRef{{Time: now.Add(-time.Minute), Patient: "Patient/" + pid, Action: "read", Outcome: monitor.OutcomeSuccess, Ref: ref}},
			Found:    []string{"a care team membership added after the access"},
			Missing:  []string{"no encounter with the user's department", "no order the user fulfils"},
			Signals:  []monitor.Signal{{Detector: "surname-address", Value: 1, Weight: 2.5, Detail: "same surname and street as the user"}},
		}}
	saved, err := e.monitorService(t).Save(t.Context(), []monitor.Alert{a})
	if err != nil {
		t.Fatal(err)
	}
	return saved.IDs[0]
}

// itoa is n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMonitorTriage: the access alerts' pages on both drivers. A
// privacy officer reads the queue worst first (filters by kind and
// score), opens an alert (its explanation, evidence and signals),
// assigns it, adds a sealed note, confirms it (the patient then sees
// "under review" on that access, and not before), and marks another a
// false positive whose reason becomes an audited suppression rule.
// Other roles are refused (audited), a form without its CSRF token is
// refused, and a security administrator sees only attack alerts.
func TestMonitorTriage(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) { monitorTriage(t, d) })
	}
}

func monitorTriage(t *testing.T, driver string) {
	e := start(t, driver)
	po := e.addUser(t, "privacy.mon", "Mona Monitor", true, identity.RolePrivacyOfficer)
	po2 := e.addUser(t, "privacy.two", "Tess Second", true, identity.RolePrivacyOfficer)
	sec := e.addUser(t, "sec.mon", "Sid Secure", true, identity.RoleSecurityAdmin)
	doc := e.addUser(t, "dr.curious", "Cory Curious", true, identity.RolePhysician)
	pid := e.storePatient(t, "Curiosity", "1981-01-01", nil)
	other := e.storePatient(t, "Neighbourly", "1982-02-02", nil)
	pat := e.addAccount(t, identity.User{Username: "patient.mon", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)

	leaf := e.readLeaf(t, doc, pid)
	leaf2 := e.readLeaf(t, doc, other)
	worst := e.seedAlert(t, doc, pid, leaf, monitor.CatFamily, 0.93, "read 1 patient who shares the user's surname and street")
	milder := e.seedAlert(t, doc, other, leaf2, monitor.CatNeighbour, 0.61, "read 1 patient on the user's street")
	attack := monitor.Alert{Key: "credential|198.51.100.7", Source: alerts.SourcePhivault, Address: "198.51.100.7", Category: monitor.CatCredential,
		Categories: []monitor.Category{monitor.CatCredential}, Score: 0.88, Severity: monitor.SeverityHigh,
		Explanation: "tried 40 accounts from one address in 5 minutes", First: time.Now().Add(-time.Hour), Last: time.Now()}
	if _, err := e.monitorService(t).Save(t.Context(), []monitor.Alert{attack}); err != nil {
		t.Fatal(err)
	}

	s := e.sessionFor(t, po)
	q := s.get(t, "/admin/alerts")
	if q.Status != http.StatusOK {
		t.Fatalf("queue: %d", q.Status)
	}
	order := regexp.MustCompile(`class="alert-item[^"]*" id="alert-([^"]+)"`).FindAllStringSubmatch(q.Body, -1)
	var ids []string
	for _, m := range order {
		ids = append(ids, m[1])
	}
	if len(ids) != 3 || ids[0] != worst || ids[2] != milder {
		t.Fatalf("queue order %v, want %s first and %s last", ids, worst, milder)
	}
	if !strings.Contains(q.Body, "shares the user&#39;s surname and street") || !strings.Contains(q.Body, "Cory Curious (dr.curious)") {
		t.Errorf("the queue does not explain the worst alert or name its user")
	}
	if p := s.get(t, "/admin/alerts?category=neighbour"); !strings.Contains(p.Body, `id="alert-`+milder+`"`) || strings.Contains(p.Body, `id="alert-`+worst+`"`) {
		t.Errorf("the kind filter does not keep only the neighbour alert")
	}
	if p := s.get(t, "/admin/alerts?min=0.9"); strings.Contains(p.Body, `id="alert-`+milder+`"`) || !strings.Contains(p.Body, `id="alert-`+worst+`"`) {
		t.Errorf("the score filter does not drop the milder alert")
	}
	if p := s.get(t, "/admin/alerts?status=nonsense"); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "choose a status from the list") {
		t.Errorf("a bad status: %d", p.Status)
	}

	// The alert: explanation, evidence, signals; the access links to its audit event.
	a := s.get(t, "/admin/alerts/"+worst)
	if a.Status != 200 {
		t.Fatalf("alert page %d: %s", a.Status, a.Body)
	}
	for _, want := range []string{"Family member", "shares the user&#39;s surname and street", "Patient/" + pid, `href="/admin/audit/` + itoa(leaf) + `"`,
		"a care team membership added after the access", "no encounter with the user&#39;s department", "surname-address", "&#43;2.50", "viewed a record"} {
		if !strings.Contains(strings.ToLower(a.Body), strings.ToLower(want)) {
			t.Errorf("the alert page lacks %q", want)
		}
	}

	// Assign, note.
	po2ID := e.accountID(t, po2)
	p := s.follow(t, "/admin/alerts/"+worst+"/assign", url.Values{"assignee": {po2ID}})
	if !strings.Contains(p.Body, "Alert assigned") || !regexp.MustCompile(`id="alert-assignee">Tess Second \(privacy.two\)`).MatchString(p.Body) {
		t.Errorf("assignment not shown")
	}
	if p := s.post(t, "/admin/alerts/"+worst+"/assign", url.Values{"assignee": {e.accountID(t, doc)}}); p.Status != http.StatusBadRequest {
		t.Errorf("assigning to a physician: %d, want 400", p.Status)
	}
	const note = "Spoke to the ward manager: no covering shift that night."
	p = s.follow(t, "/admin/alerts/"+worst+"/notes", url.Values{"note": {note}})
	if !strings.Contains(p.Body, "Note added") || !strings.Contains(p.Body, note) {
		t.Errorf("the note is not shown to the privacy officer")
	}
	if driver == "sqlite" {
		for _, f := range []string{"", "-wal"} {
			if b, err := os.ReadFile(e.App.Config.Storage.SQLitePath + f); err == nil && bytes.Contains(b, []byte("ward manager")) {
				t.Errorf("the note is in clear in the database%s file", f)
			}
		}
	}

	// The patient sees nothing under review while the alert is open.
	ps := e.patientSession(t, pat)
	if p := ps.get(t, "/portal/access"); p.Status != http.StatusOK || strings.Contains(p.Body, "under-review") || !strings.Contains(p.Body, `id="access-`+itoa(leaf)+`"`) {
		t.Fatalf("the patient's access list before the decision: %d, under review %t", p.Status, strings.Contains(p.Body, "under-review"))
	}

	// CSRF: a decision without the token is refused and changes nothing.
	if st := postNoCSRF(t, s, "/admin/alerts/"+worst+"/disposition", "status=confirmed"); st != http.StatusForbidden {
		t.Errorf("a decision without its CSRF token: %d", st)
	}
	// A false positive needs a reason.
	if p := s.post(t, "/admin/alerts/"+worst+"/disposition", url.Values{"status": {"false-positive"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "needs a reason") {
		t.Errorf("a false positive without a reason: %d", p.Status)
	}
	if p := s.get(t, "/admin/alerts/"+worst); !strings.Contains(p.Body, `id="alert-status">open`) {
		t.Fatalf("the status changed by a refused form")
	}
	p = s.follow(t, "/admin/alerts/"+worst+"/disposition", url.Values{"status": {"confirmed"}})
	if !strings.Contains(p.Body, `id="alert-status">confirmed`) {
		t.Errorf("the confirmed status does not persist")
	}
	if p := ps.get(t, "/portal/access"); strings.Count(p.Body, "Our privacy office is reviewing this access.") != 1 || strings.Contains(p.Body, "monitor-") {
		t.Errorf("the patient's access list after the confirmation: %d marks", strings.Count(p.Body, "Our privacy office is reviewing this access."))
	}

	// A false positive whose reason becomes a suppression rule for the user and the kind.
	p = s.follow(t, "/admin/alerts/"+milder+"/disposition", url.Values{"status": {"false-positive"}, "reason": {"Covering the neighbour ward this week."},
		"suppress": {"yes"}, "scope-user": {"yes"}, "scope-category": {"yes"}})
	if !strings.Contains(p.Body, "Suppression rule made") || !strings.Contains(p.Body, `id="alert-status">false positive`) || !strings.Contains(p.Body, "Covering the neighbour ward") {
		t.Errorf("the suppression is not shown")
	}
	again := monitor.Alert{Key: "neighbour|later", Source: alerts.SourcePhivault, User: doc.FHIRUser, Patients: []string{"Patient/" + other},
		Category: monitor.CatNeighbour, Score: 0.7, Severity: monitor.SeverityMedium, Explanation: "again", First: time.Now(), Last: time.Now()}
	sv, err := e.monitorService(t).Save(t.Context(), []monitor.Alert{again})
	if err != nil || sv.Suppressed != 1 || len(sv.IDs) != 1 {
		t.Fatalf("a later matching alert: %+v %v, want it suppressed", sv, err)
	}
	if p := s.get(t, "/admin/alerts"); strings.Contains(p.Body, `id="alert-`+sv.IDs[0]+`"`) {
		t.Errorf("the suppressed alert is in the queue")
	}
	if p := s.get(t, "/admin/alerts?suppressed=1"); !regexp.MustCompile(`id="alert-` + sv.IDs[0] + `"[\s\S]*?suppressed by a rule`).MatchString(p.Body) {
		t.Errorf("the suppressed alert is not listed, marked, when asked for")
	}

	poID := e.accountID(t, po)
	var reads, decided, assigned, noted, suppressed int
	for _, ev := range e.auditEvents(t) {
		if ev.Agent.User != poID || ev.Agent.Client != "webui" {
			continue
		}
		switch ev.Action {
		case audit.ActionMonitorAlertRead:
			reads++
		case audit.ActionMonitorDisposition:
			decided++
		case audit.ActionMonitorAssign:
			assigned++
		case audit.ActionMonitorNote:
			noted++
		case audit.ActionMonitorSuppress:
			suppressed++
		}
		if b, _ := ev.Marshal(); bytes.Contains(b, []byte("ward manager")) || bytes.Contains(b, []byte("neighbour ward")) {
			t.Errorf("a note or a reason is in the audit event %s", ev.Action)
		}
	}
	if reads < 8 || decided != 2 || assigned != 1 || noted != 1 || suppressed != 1 {
		t.Errorf("audited: %d reads, %d decisions, %d assignments, %d notes, %d rules", reads, decided, assigned, noted, suppressed)
	}

	// A security administrator: the attack alert only.
	ss := e.sessionFor(t, sec)
	if p := ss.get(t, "/admin/alerts?status=all"); p.Status != http.StatusOK || strings.Contains(p.Body, `id="alert-`+worst+`"`) || !strings.Contains(p.Body, "tried 40 accounts") {
		t.Errorf("the security administrator's queue: %d", p.Status)
	}
	if p := ss.get(t, "/admin/alerts/"+worst); p.Status != http.StatusNotFound {
		t.Errorf("a security administrator opens a privacy alert: %d, want 404", p.Status)
	}

	// A physician is refused every page and form, each refusal audited.
	ds := e.sessionFor(t, doc)
	before := len(e.auditEvents(t))
	for _, path := range []string{"/admin/alerts", "/admin/alerts/" + worst} {
		if p := ds.get(t, path); p.Status != http.StatusForbidden {
			t.Errorf("physician GET %s: %d", path, p.Status)
		}
	}
	for _, path := range []string{"/admin/alerts/" + worst + "/disposition", "/admin/alerts/" + worst + "/assign", "/admin/alerts/" + worst + "/notes"} {
		if p := ds.post(t, path, url.Values{"status": {"false-positive"}, "reason": {"x"}, "note": {"x"}, "assignee": {e.accountID(t, doc)}}); p.Status != http.StatusForbidden {
			t.Errorf("physician POST %s: %d", path, p.Status)
		}
	}
	denied := 0
	for _, ev := range e.auditEvents(t)[before:] {
		if ev.Outcome == audit.OutcomeDenied && slices.Contains([]audit.Action{audit.ActionUserAdmin}, ev.Action) {
			denied++
		}
	}
	if denied != 5 {
		t.Errorf("%d refusals audited, want 5", denied)
	}
	if p := s.get(t, "/admin/alerts/"+worst); !strings.Contains(p.Body, `id="alert-status">confirmed`) {
		t.Errorf("a refused form changed the alert")
	}
}

// postNoCSRF posts body from s's session without the CSRF token.
func postNoCSRF(t *testing.T, s *webSession, path, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", s.e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.e.URL)
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: s.secret})
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
