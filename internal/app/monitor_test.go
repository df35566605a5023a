package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/monitor/ownlog"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

var monitorSeq atomic.Int64

// clinician creates a Practitioner with demographics, a physician
// account bound to it and a signed-in session; it returns the headers of
// that session and the Practitioner's reference.
func clinician(t *testing.T, s *apitest.Server, person map[string]any) (apitest.H, string) {
	t.Helper()
	res := map[string]any{"resourceType": "Practitioner", "active": true}
	for k, v := range person {
		res[k] = v
	}
	pr := "Practitioner/" + s.Create(t, res)
	sq := s.App.Store.(*sqldb.Store)
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: id, Username: fmt.Sprintf("mon%d-%d", time.Now().UnixNano(), monitorSeq.Add(1)), DisplayName: "Monitor test",
		Roles: []identity.Role{identity.RolePhysician}, FHIRUser: pr}
	if _, err := sq.Users().Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(sq.Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec, _, err := m.Create(t.Context(), u.ID, true, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return apitest.H{"Authorization": apitest.NoAuth, "Cookie": web.SessionCookie + "=" + string(sec), httpapi.CSRFHeader: session.CSRFToken(string(sec))}, pr
}

// breakGlass opens an emergency grant of the session h on patient pid:
// the read that follows is allowed and explained only weakly (the
// user's own word).
func breakGlass(t *testing.T, s *apitest.Server, h apitest.H, pid string) {
	t.Helper()
	body := map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "reason", "valueCode": "ETREAT"},
		map[string]any{"name": "text", "valueString": "monitor test"}}}
	s.Do(t, http.MethodPost, "/fhir/Patient/"+pid+"/$break-glass", body, h).Want(t, http.StatusCreated)
}

// waitAlert polls the stored alerts until one of category cat names
// patient ("": any), or the deadline passes.
func waitAlert(t *testing.T, a *app.App, patient string, cat monitor.Category, deadline time.Duration) alerts.Alert {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		svc, err := a.Monitor()
		if err != nil {
			t.Fatal(err)
		}
		as, err := svc.List(t.Context(), alerts.Offline(), alerts.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range as {
			if slices.Contains(al.Categories, cat) && (patient == "" || slices.Contains(al.Patients, patient)) {
				return al
			}
		}
		if time.Now().After(end) {
			t.Fatalf("no %s alert on the patient %s after %s (%d alerts stored)", cat, patient, deadline, len(as))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var me = map[string]any{
	"name":      []any{map[string]any{"family": "Quendelby", "given": []any{"Ottilie"}}},
	"birthDate": "1979-03-14",
	"address":   []any{map[string]any{"line": []any{"12 Orchard Row"}, "city": "Harbour", "postalCode": "HB1 4QT"}},
}

// A physician reads the chart of the patient who is herself (she broke
// the glass to): the follower of the own log raises a self-access
// alert within the minute the issue allows, on both drivers. A read of
// an id that does not exist is in the log as a miss that names it.
func TestOwnLogMonitorEndToEnd(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			mail := mailbox(t)
			s := apitest.StartWith(t, driver, func(c *config.Config) {
				c.Monitor.Interval = config.Duration(time.Second)
				c.Monitor.SMTP = &config.SMTP{Address: mail.addr, From: "phivault@example.org", To: []string{"privacy@example.org"}, AllowPlaintext: true}
			})
			pat := map[string]any{"resourceType": "Patient"}
			for k, v := range me {
				pat[k] = v
			}
			pid := s.Create(t, pat)
			h, pr := clinician(t, s, me)
			breakGlass(t, s, h, pid)

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); s.App.RunOwnLogMonitor(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			start := time.Now()
			s.Do(t, http.MethodGet, "/fhir/Patient/"+pid, nil, h).Want(t, http.StatusOK)
			s.Do(t, http.MethodGet, "/fhir/Patient/nosuch-"+pid[:8], nil, h).WantOutcome(t, http.StatusNotFound)
			al := waitAlert(t, s.App, "Patient/"+pid, monitor.CatSelf, time.Minute)
			t.Logf("%s: self-access alert after %s", driver, time.Since(start).Round(time.Millisecond))
			if al.User != pr || al.Source != ownlog.SourceName || al.Status != "open" {
				t.Errorf("alert user %q source %q status %q, want %s, %s, open", al.User, al.Source, al.Status, pr, ownlog.SourceName)
			}
			if len(al.Evidence.Accesses) == 0 || al.Evidence.Accesses[0].Ref == "" {
				t.Errorf("the alert's evidence names no access of the log: %+v", al.Evidence.Accesses)
			}

			evs, err := s.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			miss, raised := false, false
			for i, ev := range evs {
				if ev.Action == audit.ActionRead && ev.Status == http.StatusNotFound && slices.Contains(ev.Entities, "Patient/nosuch-"+pid[:8]) {
					miss = true
					got := ownlog.Convert(int64(i), ev, nil)
					if len(got) != 1 || got[0].Outcome != monitor.OutcomeNotFound || got[0].Patient != "Patient/nosuch-"+pid[:8] || got[0].Session == "" {
						t.Errorf("the miss converts to %+v", got)
					}
				}
				if ev.Action == audit.ActionMonitorAlert && slices.Contains(ev.Policies, "category=self") {
					raised = true
				}
			}
			if !miss {
				t.Error("the read of an id that does not exist left no event naming it with 404")
			}
			if !raised {
				t.Error("the alert left no monitor-alert audit event (the SIEM sinks export these)")
			}
			if got := exportedAlertEvents(t, s); got == 0 {
				t.Error("the webhook sink received no monitor-alert event")
			}
			// Enumeration: a dozen ids that do not exist in a few seconds
			// is a high-severity alert, which is emailed.
			for i := range 12 {
				s.Do(t, http.MethodGet, fmt.Sprintf("/fhir/Patient/guess-%d-%s", i, pid[:6]), nil, h).WantOutcome(t, http.StatusNotFound)
			}
			enum := waitAlert(t, s.App, "", monitor.CatEnumeration, time.Minute)
			if enum.Severity != monitor.SeverityHigh || enum.User != pr {
				t.Fatalf("enumeration alert of %s scored %s (%.2f), want high and the practitioner", enum.User, enum.Severity, enum.Score)
			}
			link := s.URL + app.AlertPath + enum.ID
			end := time.Now().Add(10 * time.Second)
			for !mail.has(link) {
				if time.Now().After(end) {
					t.Fatalf("no email links to %s; received %q", link, mail.all())
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, leak := range []string{pid, "Quendelby", strings.TrimPrefix(pr, "Practitioner/")} {
				if strings.Contains(mail.all(), leak) {
					t.Errorf("the email names %q", leak)
				}
			}
		})
	}
}

// exportedAlertEvents drains the log into a signed webhook, as a SIEM
// sink of the "export" section does, and counts the monitor-alert
// events received with their category and severity.
func exportedAlertEvents(t *testing.T, s *apitest.Server) int {
	t.Helper()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8ThKNvxyFhs="
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p struct {
			Data struct {
				Events []audit.Event `json:"events"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, e := range p.Data.Events {
			if e.Action == audit.ActionMonitorAlert && slices.Contains(e.Policies, "category=self") &&
				slices.ContainsFunc(e.Policies, func(p string) bool { return strings.HasPrefix(p, "severity=") }) {
				n++
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	sink, err := export.NewWebhook("siem-monitor", export.WebhookOptions{URL: ts.URL, Secret: secret, Client: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	x, err := export.New(export.Options{Sink: sink, Source: s.App.Transparency().Reader(), Cursors: s.App.Store.(*sqldb.Store).ExportCursors()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Transparency().Integrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Drain(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return n
}

// Two processes on one PostgreSQL database: only the leader scores; when
// it stops, the other takes the duty over and scores what follows.
func TestOwnLogMonitorLeader(t *testing.T) {
	s := apitest.StartWith(t, "postgres", func(c *config.Config) { c.Monitor.Interval = config.Duration(time.Second) })
	var logB syncBuffer
	open := func() *app.App {
		a, err := app.Open(t.Context(), s.App.Config, slog.New(slog.NewTextHandler(&logB, nil)))
		if err != nil {
			t.Fatalf("opening another process: %v", err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	b := open()
	la, lb := s.App.Store.(*sqldb.Store).Leader(ownlog.CursorName), b.Store.(*sqldb.Store).Leader(ownlog.CursorName)
	t.Cleanup(la.Release)
	t.Cleanup(lb.Release)
	okA, err := la.Lead(t.Context())
	if err != nil || !okA {
		t.Fatalf("the first process does not lead: %v %v", okA, err)
	}
	if okB, err := lb.Lead(t.Context()); err != nil || okB {
		t.Fatalf("a second process leads beside the first: %v %v", okB, err)
	}
	if ok, _ := la.Lead(t.Context()); !ok {
		t.Fatal("the leader lost the duty it holds")
	}
	la.Release()
	if okB, err := lb.Lead(t.Context()); err != nil || !okB {
		t.Fatalf("the duty was not taken over once released: %v %v", okB, err)
	}
	lb.Release()

	// The followers of both processes run; only one stores alerts.
	pat := map[string]any{"resourceType": "Patient"}
	for k, v := range me {
		pat[k] = v
	}
	pid := s.Create(t, pat)
	h, _ := clinician(t, s, me)
	breakGlass(t, s, h, pid)
	ctxA, stopA := context.WithCancel(t.Context())
	ctxB, stopB := context.WithCancel(t.Context())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); s.App.RunOwnLogMonitor(ctxA) }()
	time.Sleep(500 * time.Millisecond) // A asks first
	go func() { defer close(doneB); b.RunOwnLogMonitor(ctxB) }()
	t.Cleanup(func() { stopA(); stopB(); <-doneA; <-doneB })

	s.Do(t, http.MethodGet, "/fhir/Patient/"+pid, nil, h).Want(t, http.StatusOK)
	waitAlert(t, s.App, "Patient/"+pid, monitor.CatSelf, time.Minute)
	time.Sleep(3 * time.Second) // B asked to lead at least twice meanwhile
	const leads = "this process now follows the own audit log"
	if !strings.Contains(s.Logs(), leads) || strings.Contains(logB.String(), leads) {
		t.Fatalf("process A leads: %v; process B leads: %v (want A only)", strings.Contains(s.Logs(), leads), strings.Contains(logB.String(), leads))
	}

	// The leader stops (as a crashed process's session ends); the other
	// takes over and scores the next access.
	stopA()
	<-doneA
	pid2 := s.Create(t, pat) // a second chart of the same person
	breakGlass(t, s, h, pid2)
	s.Do(t, http.MethodGet, "/fhir/Patient/"+pid2, nil, h).Want(t, http.StatusOK)
	waitAlert(t, s.App, "Patient/"+pid2, monitor.CatSelf, time.Minute)
	if !strings.Contains(logB.String(), leads) {
		t.Error("process B scored without saying it leads")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The loader builds the directory from stored resources: departments
// with their parents, practitioners with roles and rosters, the patient
// with labels and every kind of care relationship, a PractitionerRole
// participant resolved to its practitioner, and the patient's own
// account.
func TestOwnLogLoaderOnStoredResources(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	hosp := s.Create(t, map[string]any{"resourceType": "Organization", "name": "General"})
	ward := s.Create(t, map[string]any{"resourceType": "Organization", "name": "Cardiology", "partOf": map[string]any{"reference": "Organization/" + hosp}})
	_, pr := clinician(t, s, me)
	role := s.Create(t, map[string]any{"resourceType": "PractitionerRole", "active": true, "practitioner": map[string]any{"reference": pr},
		"organization":  map[string]any{"reference": "Organization/" + ward},
		"code":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": "doctor"}}}},
		"availableTime": []any{map[string]any{"daysOfWeek": []any{"mon", "tue"}, "availableStartTime": "08:00:00", "availableEndTime": "16:30:00"}}})
	pid := s.Create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Vipperton", "given": []any{"Ada"}}}, "birthDate": "1960-01-02",
		"meta": map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}}}})
	subj := map[string]any{"reference": "Patient/" + pid}
	enc := s.Create(t, map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject": subj, "participant": []any{map[string]any{"individual": map[string]any{"reference": "PractitionerRole/" + role}}},
		"period": map[string]any{"start": "2026-11-01T08:00:00Z", "end": "2026-11-01T09:00:00Z"}, "serviceProvider": map[string]any{"reference": "Organization/" + ward}})
	s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active", "subject": subj, "participant": []any{map[string]any{"member": map[string]any{"reference": pr}}}})
	s.Create(t, map[string]any{"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": subj, "authoredOn": "2026-11-02",
		"code":          map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "24323-8"}}},
		"performerType": map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "159282002"}}}})
	s.Create(t, map[string]any{"resourceType": "Account", "status": "active", "subject": []any{subj}, "owner": map[string]any{"reference": "Organization/" + hosp}})

	// The patient's own account.
	sq := s.App.Store.(*sqldb.Store)
	pidUser, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.Users().Create(t.Context(), identity.User{ID: pidUser, Username: fmt.Sprintf("pat%d", monitorSeq.Add(1)), FHIRUser: "Patient/" + pid}); err != nil {
		t.Fatal(err)
	}

	l, err := ownlog.NewLoader(ownlog.LoaderOptions{Source: app.MonitorSource(s.App), Users: sq.Users(), Grants: sq.Authz()})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if err := l.Prepare(t.Context(), []audit.Event{
		{Time: at, Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: pidUser}, Patients: []string{"Patient/" + pid}},
	}); err != nil {
		t.Fatal(err)
	}
	d := l.Directory()
	if dep := d.Departments["Organization/"+ward]; dep.PartOf != "Organization/"+hosp || dep.Name != "Cardiology" {
		t.Errorf("department %+v", dep)
	}
	p := d.Practitioners[pr]
	if p == nil || p.Family != "Quendelby" || p.BirthDate != "1979-03-14" || len(p.Addresses) != 1 || p.Addresses[0].PostalCode != "HB1 4QT" {
		t.Fatalf("practitioner %+v", p)
	}
	if len(p.Roles) != 1 || p.Roles[0].Organization != "Organization/"+ward || !slices.Contains(p.Roles[0].Codes, "doctor") ||
		len(p.Roles[0].Shifts) != 1 || p.Roles[0].Shifts[0].Start != 8*time.Hour || p.Roles[0].Shifts[0].End != 16*time.Hour+30*time.Minute {
		t.Errorf("roles %+v", p.Roles)
	}
	pi := d.Patients["Patient/"+pid]
	if pi == nil || pi.Family != "Vipperton" || !slices.Contains(pi.Labels, "V") {
		t.Fatalf("patient %+v", pi)
	}
	kinds := map[monitor.RelationKind]monitor.Relation{}
	for _, r := range d.Relations["Patient/"+pid] {
		kinds[r.Kind] = r
	}
	if e := kinds[monitor.RelEncounter]; e.Ref != "Encounter/"+enc || !slices.Contains(e.Participants, pr) || !slices.Contains(e.Organizations, "Organization/"+ward) || e.Start.IsZero() {
		t.Errorf("encounter relation %+v (its PractitionerRole must resolve to the practitioner)", e)
	}
	if c := kinds[monitor.RelCareTeam]; !slices.Contains(c.Participants, pr) {
		t.Errorf("care team relation %+v", c)
	}
	if o := kinds[monitor.RelOrder]; !slices.Contains(o.Codes, "159282002") {
		t.Errorf("order relation %+v", o)
	}
	if b := kinds[monitor.RelBilling]; !slices.Contains(b.Organizations, "Organization/"+hosp) {
		t.Errorf("billing relation %+v", b)
	}
	if self := kinds[monitor.RelSelf]; !slices.Contains(self.Participants, "User/"+pidUser) {
		t.Errorf("own-record relation %+v", self)
	}
	if got := l.Account(pidUser); got != "Patient/"+pid {
		t.Errorf("account maps to %q", got)
	}
}

// smtpBox is an in-process SMTP relay on loopback (go-smtp).
type smtpBox struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func (b *smtpBox) has(s string) bool { return strings.Contains(b.all(), s) }
func (b *smtpBox) all() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.msgs, "\n----\n")
}

type smtpSession struct{ b *smtpBox }

func (s smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s smtpSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, string(body))
	s.b.mu.Unlock()
	return nil
}
func (s smtpSession) Reset()        {}
func (s smtpSession) Logout() error { return nil }

func mailbox(t *testing.T) *smtpBox {
	t.Helper()
	b := &smtpBox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return smtpSession{b}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = stdlog.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// monitor.own_log false: no follower (Serve's loop is a no-op).
func TestOwnLogMonitorOff(t *testing.T) {
	off := false
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) { c.Monitor.OwnLog = &off })
	if s.App.OwnLogMonitor() != nil {
		t.Error("the own-log follower exists with monitor.own_log false")
	}
	on := apitest.Start(t, "sqlite")
	if on.App.OwnLogMonitor() == nil {
		t.Error("the own-log follower is off by default")
	}
}
