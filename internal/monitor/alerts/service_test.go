package alerts_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// env is a real phivault (keys, store, audit log) on one driver.
type env struct {
	srv *apitest.Server
	svc *alerts.Service
}

func eachDriver(t *testing.T, fn func(t *testing.T, e env)) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			s := apitest.Start(t, d)
			svc, err := s.App.Monitor()
			if err != nil {
				t.Fatal(err)
			}
			fn(t, env{srv: s, svc: svc})
		})
	}
}

// account creates an enabled account with roles, bound to fhirUser
// ("" none), and returns its actor.
func (e env) account(t *testing.T, fhirUser string, roles ...identity.Role) alerts.Actor {
	t.Helper()
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: id, Username: "mon-" + id[4:16], DisplayName: "Monitor test", Roles: roles, FHIRUser: fhirUser}
	if _, err := e.srv.App.Store.(*sqldb.Store).Users().Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	by := alerts.Actor{Agent: audit.Agent{User: id}, RequestID: "req-" + id, Status: 200}
	for _, r := range roles {
		by.Roles = append(by.Roles, string(r))
	}
	return by
}

func officer(user string) alerts.Actor {
	return alerts.Actor{Agent: audit.Agent{User: user}, Roles: []string{"privacy-officer"}, RequestID: "req-" + user, Status: 200}
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func alertOf(key, source, user string, cat monitor.Category, score float64, patients ...string) monitor.Alert {
	a := monitor.Alert{Key: key, Source: source, User: user, Patients: patients, Category: cat, Categories: []monitor.Category{cat},
		Score: score, Severity: monitor.SeverityHigh, Explanation: "read 2 patients outside the rostered shift", First: t0, Last: t0.Add(time.Hour)}
	for i, p := range patients {
		a.Evidence.Accesses = append(a.Evidence.Accesses, monitor.AccessRef{Time: t0.Add(time.Duration(i) * time.Minute), Patient: p,
			Action: "read", Ref: "leaf/" + string(rune('1'+i))})
	}
	return a
}

func (e env) events(t *testing.T) []audit.Event {
	t.Helper()
	evs, err := e.srv.App.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (e env) count(t *testing.T, act audit.Action, outcome audit.Outcome) int {
	t.Helper()
	n := 0
	for _, ev := range e.events(t) {
		if ev.Action == act && ev.Outcome == outcome {
			n++
		}
	}
	return n
}

// A later run's update of an alert changes score and evidence and keeps
// its status, assignee and notes.
func TestSaveKeepsTriage(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		po := officer("u-po")
		saved, err := e.svc.Save(ctx, []monitor.Alert{alertOf("k1", "his", "Practitioner/p1", monitor.CatFamily, 0.5, "Patient/a")})
		if err != nil || saved.Created != 1 || len(saved.IDs) != 1 {
			t.Fatalf("save: %+v %v", saved, err)
		}
		id := saved.IDs[0]
		// The same key twice in one call is one alert.
		twice, err := e.svc.Save(ctx, []monitor.Alert{alertOf("k2", "his", "Practitioner/p1", monitor.CatVIP, 0.3, "Patient/a"),
			alertOf("k2", "his", "Practitioner/p1", monitor.CatVIP, 0.4, "Patient/c")})
		if err != nil || twice.Created != 1 || len(twice.IDs) != 1 {
			t.Fatalf("a key twice in one call: %+v %v", twice, err)
		}
		if err := e.svc.SetDisposition(ctx, po, id, storage.AlertConfirmed, "spoke with the manager"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Assign(ctx, po, id, "u-other"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.AddNote(ctx, po, id, "interview booked"); err != nil {
			t.Fatal(err)
		}
		upd := alertOf("k1", "his", "Practitioner/p1", monitor.CatFamily, 0.9, "Patient/b")
		upd.Explanation = "a new explanation"
		saved, err = e.svc.Save(ctx, []monitor.Alert{upd})
		if err != nil || saved.Updated != 1 || saved.Created != 0 || saved.IDs[0] != id {
			t.Fatalf("update: %+v %v", saved, err)
		}
		d, err := e.svc.Get(ctx, po, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != storage.AlertConfirmed || d.Assignee != "u-other" || d.Score != 0.9 || d.Explanation != "a new explanation" {
			t.Errorf("after update: status %q assignee %q score %v expl %q", d.Status, d.Assignee, d.Score, d.Explanation)
		}
		if !slices.Equal(slices.Sorted(slices.Values(d.Patients)), []string{"Patient/a", "Patient/b"}) || len(d.Evidence.Accesses) != 2 {
			t.Errorf("merged patients %v, accesses %d", d.Patients, len(d.Evidence.Accesses))
		}
		var texts []string
		for _, n := range d.Notes {
			texts = append(texts, n.Text)
			if n.Author != "u-po" {
				t.Errorf("note author %q", n.Author)
			}
		}
		if !slices.Equal(texts, []string{"spoke with the manager", "interview booked"}) {
			t.Errorf("notes %q", texts)
		}
		// Audited: raised twice, disposition, assignment, note, read.
		for _, act := range []audit.Action{audit.ActionMonitorAlert, audit.ActionMonitorDisposition, audit.ActionMonitorAssign,
			audit.ActionMonitorNote, audit.ActionMonitorAlertRead} {
			if e.count(t, act, audit.OutcomeSuccess) == 0 {
				t.Errorf("no %s event", act)
			}
		}
		// Ingested sources' patients are not named in the log.
		for _, ev := range e.events(t) {
			if ev.Action == audit.ActionMonitorAlert && len(ev.Patients) > 0 {
				t.Errorf("an ingested alert's event names patients: %v", ev.Patients)
			}
		}
	})
}

// A suppression rule made from a false positive suppresses later
// matching alerts, which are stored (counted, listable on demand) but
// not in the queue; other alerts are untouched.
func TestSuppression(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		po := e.account(t, "", identity.RolePrivacyOfficer)
		saved, err := e.svc.Save(ctx, []monitor.Alert{alertOf("k1", "his", "Practitioner/p1", monitor.CatNeighbour, 0.6, "Patient/a")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Suppress(ctx, po, saved.IDs[0], alerts.Scope{}, "same building, a hospital flat"); !errors.Is(err, alerts.ErrInvalid) {
			t.Errorf("empty scope: %v", err)
		}
		if _, err := e.svc.Suppress(ctx, po, saved.IDs[0], alerts.Scope{User: true, Category: true}, ""); !errors.Is(err, alerts.ErrInvalid) {
			t.Errorf("no reason: %v", err)
		}
		rule, err := e.svc.Suppress(ctx, po, saved.IDs[0], alerts.Scope{User: true, Category: true}, "lives in staff housing")
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.svc.Get(ctx, po, saved.IDs[0])
		if err != nil || d.Status != storage.AlertFalsePositive {
			t.Fatalf("the alert is not a false positive: %q %v", d.Status, err)
		}
		got, err := e.svc.Save(ctx, []monitor.Alert{
			alertOf("k2", "his", "Practitioner/p1", monitor.CatNeighbour, 0.7, "Patient/c"),  // suppressed
			alertOf("k3", "his", "Practitioner/p2", monitor.CatNeighbour, 0.7, "Patient/c"),  // another user
			alertOf("k4", "his", "Practitioner/p1", monitor.CatVIP, 0.7, "Patient/c"),        // another category
			alertOf("k5", "his2", "Practitioner/p1", monitor.CatNeighbour, 0.7, "Patient/c"), // another source
		})
		if err != nil || got.Created != 4 || got.Suppressed != 1 {
			t.Fatalf("save: %+v %v", got, err)
		}
		list, err := e.svc.List(ctx, po, alerts.Filter{Status: storage.AlertOpen})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || slices.ContainsFunc(list, func(a alerts.Alert) bool { return a.Key == "k2" }) {
			t.Errorf("queue: %d alerts %+v", len(list), list)
		}
		all, err := e.svc.List(ctx, po, alerts.Filter{Suppressed: true, Status: storage.AlertOpen})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(all, func(a alerts.Alert) bool { return a.Key == "k2" })
		if i < 0 || all[i].Suppressed != rule {
			t.Errorf("the suppressed alert is not listed with its rule: %+v", all)
		}
		if e.count(t, audit.ActionMonitorSuppress, audit.OutcomeSuccess) != 1 {
			t.Error("the suppression is not audited")
		}
	})
}

// UnderReview names the own-log accesses of confirmed alerts only, and
// only the patient's own.
func TestUnderReview(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		po := officer("u-po")
		own := alertOf("k1", alerts.SourcePhivault, "User/u9", monitor.CatBrowsing, 0.8, "Patient/a", "Patient/b")
		other := alertOf("k1", "his", "Practitioner/p1", monitor.CatBrowsing, 0.8, "Patient/a")
		saved, err := e.svc.Save(ctx, []monitor.Alert{own, other})
		if err != nil || saved.Created != 2 {
			t.Fatalf("save: %+v %v", saved, err)
		}
		if rv, err := e.svc.UnderReview(ctx, "Patient/a"); err != nil || len(rv.Refs) != 0 || len(rv.Spans) != 0 {
			t.Fatalf("open alert under review: %+v %v", rv, err)
		}
		for _, id := range saved.IDs {
			if err := e.svc.SetDisposition(ctx, po, id, storage.AlertConfirmed, ""); err != nil {
				t.Fatal(err)
			}
		}
		if rv, err := e.svc.UnderReview(ctx, "Patient/a"); err != nil || !slices.Equal(rv.Refs, []string{"leaf/1"}) ||
			len(rv.Spans) != 1 || rv.Spans[0] != (alerts.Span{User: "User/u9", First: t0, Last: t0.Add(time.Hour)}) {
			t.Errorf("Patient/a: %+v %v", rv, err)
		}
		if rv, err := e.svc.UnderReview(ctx, "Patient/b"); err != nil || !slices.Equal(rv.Refs, []string{"leaf/2"}) ||
			len(rv.Spans) != 1 || rv.Spans[0] != (alerts.Span{User: "User/u9", First: t0, Last: t0.Add(time.Hour)}) {
			t.Errorf("Patient/b: %+v %v", rv, err)
		}
		if rv, err := e.svc.UnderReview(ctx, "Patient/zz"); err != nil || len(rv.Refs) != 0 || len(rv.Spans) != 0 {
			t.Errorf("Patient/zz: %+v %v", rv, err)
		}
		// The spans cover the user's other accesses, by account or by
		// the Practitioner it is bound to, within the alert's times only.
		rv, _ := e.svc.UnderReview(ctx, "Patient/a")
		for _, c := range []struct {
			account, fhirUser string
			at                time.Time
			want              bool
		}{
			{"u9", "", t0.Add(30 * time.Minute), true},
			{"u9", "", t0.Add(time.Hour), true},
			{"u9", "", t0.Add(2 * time.Hour), false},
			{"u8", "", t0.Add(30 * time.Minute), false},
			{"", "", t0.Add(30 * time.Minute), false},
		} {
			if got := rv.Covers(c.account, c.fhirUser, c.at); got != c.want {
				t.Errorf("Covers(%q, %q, %v) = %t", c.account, c.fhirUser, c.at, got)
			}
		}
		prac := alerts.Review{Spans: []alerts.Span{{User: "Practitioner/p1", First: t0, Last: t0}}}
		if !prac.Covers("usr_x", "Practitioner/p1", t0) || prac.Covers("usr_x", "Practitioner/p2", t0) {
			t.Error("a Practitioner span does not match the bound account's accesses")
		}
		// The own-log alert's event names its patients (an auditor's
		// search by patient finds it; no patient's view shows it).
		found := false
		for _, ev := range e.events(t) {
			if ev.Action == audit.ActionMonitorAlert && slices.Equal(ev.Patients, []string{"Patient/a", "Patient/b"}) {
				found = true
			}
		}
		if !found {
			t.Error("the own-log alert's event does not name its patients")
		}
	})
}

// Everyone but a privacy officer is refused, and audited; a security
// administrator sees the attack categories only.
func TestAuthorization(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		saved, err := e.svc.Save(ctx, []monitor.Alert{
			alertOf("k1", "his", "Practitioner/p1", monitor.CatFamily, 0.9, "Patient/a"),
			alertOf("k2", "his", "", monitor.CatCredential, 0.8),
		})
		if err != nil {
			t.Fatal(err)
		}
		privacyID, attackID := saved.IDs[0], saved.IDs[1]
		nurse := alerts.Actor{Agent: audit.Agent{User: "u-nurse"}, Roles: []string{"nurse"}}
		type check struct {
			name string
			err  error
		}
		var checks []check
		_, err = e.svc.List(ctx, nurse, alerts.Filter{})
		checks = append(checks, check{"list", err})
		_, err = e.svc.Get(ctx, nurse, privacyID)
		checks = append(checks, check{"get", err})
		checks = append(checks, check{"disposition", e.svc.SetDisposition(ctx, nurse, privacyID, storage.AlertConfirmed, "")})
		checks = append(checks, check{"assign", e.svc.Assign(ctx, nurse, privacyID, "u-nurse")})
		_, err = e.svc.AddNote(ctx, nurse, privacyID, "x")
		checks = append(checks, check{"note", err})
		_, err = e.svc.Suppress(ctx, nurse, privacyID, alerts.Scope{Category: true}, "x")
		checks = append(checks, check{"suppress", err})
		_, err = e.svc.Ingest(ctx, nurse, "his", strings.NewReader("{}"), nil, nil)
		checks = append(checks, check{"ingest", err})
		for _, c := range checks {
			if !errors.Is(c.err, alerts.ErrForbidden) {
				t.Errorf("%s by a nurse: %v, want ErrForbidden", c.name, c.err)
			}
		}
		denied := 0
		for _, ev := range e.events(t) {
			if ev.Outcome == audit.OutcomeDenied && ev.Agent.User == "u-nurse" {
				denied++
			}
		}
		if denied != len(checks) {
			t.Errorf("%d refusals audited, want %d", denied, len(checks))
		}

		sec := alerts.Actor{Agent: audit.Agent{User: "u-sec"}, Roles: []string{"security-admin"}}
		list, err := e.svc.List(ctx, sec, alerts.Filter{})
		if err != nil || len(list) != 1 || list[0].ID != attackID {
			t.Errorf("security admin's queue: %+v %v", list, err)
		}
		if _, err := e.svc.Get(ctx, sec, privacyID); !errors.Is(err, alerts.ErrNotFound) {
			t.Errorf("security admin reads a privacy alert: %v", err)
		}
		if err := e.svc.SetDisposition(ctx, sec, attackID, storage.AlertNeedsInterview, ""); err != nil {
			t.Errorf("security admin triages an attack: %v", err)
		}
	})
}

// An ingest stores the run, its data sealed (readable back through the
// service, byte for byte), and audits it; no name or id of the context
// is in the clear in the data directory.
func TestIngestSealed(t *testing.T) {
	ctxFile, err := os.ReadFile(filepath.Join("testdata", "context.json"))
	if err != nil {
		t.Fatal(err)
	}
	evFile, err := os.ReadFile(filepath.Join("testdata", "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		po := officer("u-po")
		if _, err := e.svc.Ingest(ctx, po, "phivault", bytes.NewReader(ctxFile), nil, nil); !errors.Is(err, alerts.ErrInvalid) {
			t.Errorf("source named phivault: %v", err)
		}
		var phases []string
		res, err := e.svc.Ingest(ctx, po, "his", bytes.NewReader(ctxFile), alerts.FileList(bytes.NewReader(evFile)), func(p alerts.Progress) {
			phases = append(phases, p.Phase)
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Events != 3 || res.Bytes != int64(len(ctxFile)+len(evFile)) || !slices.Contains(phases, "done") {
			t.Errorf("ingest: %+v, phases %v", res, phases)
		}
		var gotCtx, gotEv []byte
		if err := e.svc.Chunks(ctx, po, res.Run, func(kind string, data []byte) error {
			if kind == "context" {
				gotCtx = append(gotCtx, data...)
			} else {
				gotEv = append(gotEv, data...)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotCtx, ctxFile) || !bytes.Equal(gotEv, evFile) {
			t.Errorf("stored data differs: %d/%d context bytes, %d/%d event bytes", len(gotCtx), len(ctxFile), len(gotEv), len(evFile))
		}
		runs, err := e.svc.Runs(ctx, po, 10)
		if err != nil || len(runs) != 1 || runs[0].State != "done" || runs[0].Events != 3 || runs[0].Actor != "u-po" {
			t.Errorf("runs: %+v %v", runs, err)
		}
		if e.count(t, audit.ActionMonitorIngest, audit.OutcomeSuccess) != 1 {
			t.Error("the ingest is not audited")
		}
		// What the store holds is sealed: no chunk decompresses as it is,
		// and none holds a value of the input.
		dec, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		n := 0
		if err := e.srv.App.Store.(storage.MonitorReader).MonitorChunks(ctx, res.Run, func(c storage.MonitorChunk) error {
			n++
			if _, err := dec.DecodeAll(c.Body, nil); err == nil {
				t.Errorf("chunk %d is stored unsealed", c.Seq)
			}
			if bytes.Contains(c.Body, []byte("Quillfeatherby")) {
				t.Errorf("chunk %d holds a name", c.Seq)
			}
			return nil
		}); err != nil || n != 2 {
			t.Errorf("raw chunks: %d %v", n, err)
		}
		if e.srv.Driver == "sqlite" {
			noClearText(t, e.srv.App.Config.Storage.SQLitePath, "Quillfeatherby", "Ostrowinska", "Larkspur", "pat-kin", "pat-care")
		}
	})
}

// noClearText fails if any file of the data directory holding db holds
// one of words.
func noClearText(t *testing.T, db string, words ...string) {
	t.Helper()
	dir := filepath.Dir(db)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, w := range words {
			if bytes.Contains(b, []byte(w)) {
				t.Errorf("%s holds an ingested value in the clear", filepath.Base(p))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The own-log cursor starts at 0 and keeps what was set.
func TestCursor(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		if pos, err := e.svc.Cursor(ctx, "own-log"); err != nil || pos != 0 {
			t.Fatalf("fresh cursor %d %v", pos, err)
		}
		if err := e.svc.SetCursor(ctx, "own-log", 1234); err != nil {
			t.Fatal(err)
		}
		if pos, err := e.svc.Cursor(ctx, "own-log"); err != nil || pos != 1234 {
			t.Errorf("cursor %d %v", pos, err)
		}
		if err := e.svc.SetCursor(ctx, "own-log", -1); !errors.Is(err, alerts.ErrInvalid) {
			t.Errorf("negative cursor: %v", err)
		}
	})
}

// One line over the line limit costs only itself: the events after it
// are ingested and scored (found by the outside tester: one long line
// ended the ingest early, reported as a success).
func TestIngestLongLine(t *testing.T) {
	ctxFile, err := os.ReadFile(filepath.Join("testdata", "context.json"))
	if err != nil {
		t.Fatal(err)
	}
	evFile, err := os.ReadFile(filepath.Join("testdata", "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	long := `{"resourceType":"AuditEvent","x":"` + strings.Repeat("A", 1<<20) + "\"}\n"
	in := append([]byte(long), evFile...)
	eachDriver(t, func(t *testing.T, e env) {
		res, err := e.svc.Ingest(t.Context(), officer("u-po"), "his", bytes.NewReader(ctxFile), alerts.FileList(bytes.NewReader(in)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Events != 3 || res.Unreadable != 1 || res.Alerts == 0 {
			t.Errorf("ingest after a long first line: %+v", res)
		}
	})
}
