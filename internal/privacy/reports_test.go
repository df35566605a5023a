package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// plainSealer seals nothing: the audit records stay readable.
type plainSealer struct{}

func (plainSealer) SealAudit(_ string, b []byte) ([]byte, error) { return b, nil }
func (plainSealer) OpenAudit(_ string, b []byte) ([]byte, error) { return b, nil }

// fakeStore is the reports' table and the audit table, with one
// transaction at a time: a failing fn leaves both as they were.
type fakeStore struct {
	log     *audit.Log
	reports map[string]storage.AccessReport
	events  []audit.Event
	failTx  error // returned by Update without running fn
}

type fakeTx struct {
	st      *fakeStore
	reports map[string]storage.AccessReport
	events  []audit.Event
}

func (f *fakeStore) Update(_ context.Context, fn func(privacy.Tx) error) error {
	if f.failTx != nil {
		return f.failTx
	}
	t := &fakeTx{st: f, reports: map[string]storage.AccessReport{}, events: slices.Clone(f.events)}
	for k, v := range f.reports {
		t.reports[k] = v
	}
	if err := fn(t); err != nil {
		return err
	}
	f.reports, f.events = t.reports, t.events
	return nil
}

func (t *fakeTx) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	for _, rec := range recs {
		b, err := t.st.log.Open(rec)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		t.events = append(t.events, ev)
	}
	return nil
}

func (t *fakeTx) InsertAccessReport(_ context.Context, r storage.AccessReport) error {
	if _, ok := t.reports[r.ID]; ok {
		return storage.ErrConflict
	}
	t.reports[r.ID] = r
	return nil
}

func (t *fakeTx) CloseAccessReport(_ context.Context, id, closer string, at time.Time, note []byte) error {
	r, ok := t.reports[id]
	switch {
	case !ok:
		return storage.ErrNotFound
	case !r.Closed.IsZero():
		return storage.ErrConflict
	}
	r.Closed, r.Closer, r.CloseNote = at, closer, note
	t.reports[id] = r
	return nil
}

func (f *fakeStore) OpenAccessReports(_ context.Context, limit int) ([]storage.AccessReport, error) {
	var out []storage.AccessReport
	for _, r := range f.reports {
		if r.Closed.IsZero() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b storage.AccessReport) int { return a.Created.Compare(b.Created) })
	return out[:min(limit, len(out))], nil
}

func (f *fakeStore) AccessReport(_ context.Context, id string) (storage.AccessReport, error) {
	r, ok := f.reports[id]
	if !ok {
		return r, storage.ErrNotFound
	}
	return r, nil
}

// notes "seals" by prefixing the owner, id and part.
type notes struct{ fail bool }

func (n notes) SealReportNote(_ context.Context, owner ident.Owner, id string, part int64, text []byte) ([]byte, error) {
	return append([]byte(string(owner)+"|"+id+"|"+string(rune('0'+part))+"|"), text...), nil
}

func (n notes) OpenReportNote(_ context.Context, owner ident.Owner, id string, part int64, sealed []byte) ([]byte, error) {
	prefix := []byte(string(owner) + "|" + id + "|" + string(rune('0'+part)) + "|")
	if n.fail || !bytes.HasPrefix(sealed, prefix) {
		return nil, errors.New("cannot open")
	}
	return sealed[len(prefix):], nil
}

func newReports(t *testing.T, n notes) (*privacy.Reports, *fakeStore, time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	log := audit.NewLog(plainSealer{})
	st := &fakeStore{log: log, reports: map[string]storage.AccessReport{}}
	r, err := privacy.NewReports(privacy.Options{Tx: st, Store: st, Notes: n, Log: log, Now: func() time.Time { return now },
		Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 64))})
	if err != nil {
		t.Fatal(err)
	}
	return r, st, now
}

var patient = audit.Agent{User: "usr_p", Role: "patient", Client: "webui"}

var officer = audit.Agent{User: "usr_po", Role: "privacy-officer", Client: "webui"}

// A report and its closing each commit with their event; the events
// hold the fields the portal recorded (agent, purpose, patient,
// entities, request id, status), never the texts.
func TestReportCreateClose(t *testing.T) {
	r, st, now := newReports(t, notes{})
	ctx := t.Context()
	rep, err := r.Create(ctx, privacy.Actor{Agent: patient, Purpose: "PATRQT", RequestID: "req-1", Status: 303},
		privacy.NewReport{Patient: "Patient/p1", Leaf: 42, Reporter: "usr_p", Comment: "not me"})
	if err != nil {
		t.Fatal(err)
	}
	const id = "abababababababababababababababab"
	if rep.ID != id || rep.Patient != "Patient/p1" || rep.Leaf != 42 || rep.Reporter != "usr_p" || !rep.Created.Equal(now) {
		t.Fatalf("report %+v", rep)
	}
	if got := st.reports[id]; string(got.Comment) != "Patient/p1|"+id+"|1|not me" {
		t.Errorf("stored comment %q, want it sealed as the comment (part %d)", got.Comment, record.ReportComment)
	}
	if len(st.events) != 1 {
		t.Fatalf("%d events, want 1", len(st.events))
	}
	ev := st.events[0]
	if ev.Action != audit.ActionAccessReport || ev.Outcome != audit.OutcomeSuccess || ev.Agent != patient || ev.Purpose != "PATRQT" ||
		!slices.Equal(ev.Patients, []string{"Patient/p1"}) || !slices.Equal(ev.Entities, []string{"AuditEvent/42", "AccessReport/" + id}) ||
		ev.RequestID != "req-1" || ev.Status != 303 || !ev.Time.Equal(now) {
		t.Errorf("report event %+v", ev)
	}

	list, err := r.Open(ctx, privacy.Actor{Agent: officer, Purpose: "HOPERAT", RequestID: "req-2", Status: 200}, 10)
	if err != nil || len(list) != 1 || list[0].Text != "not me" || list[0].Unreadable {
		t.Fatalf("Open = %+v, %v", list, err)
	}
	if ev := st.events[1]; ev.Action != audit.ActionAccessReportRead || ev.Agent != officer || ev.Purpose != "HOPERAT" ||
		!slices.Equal(ev.Entities, []string{"AccessReport/" + id}) || !slices.Equal(ev.Patients, []string{"Patient/p1"}) || ev.Status != 200 {
		t.Errorf("read event %+v", ev)
	}

	got, err := r.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	by := privacy.Actor{Agent: officer, Purpose: "HOPERAT", RequestID: "req-3", Status: 303}
	if err := r.Close(ctx, by, got, "checked"); err != nil {
		t.Fatal(err)
	}
	if c := st.reports[id]; !c.Closed.Equal(now) || c.Closer != "usr_po" || string(c.CloseNote) != "Patient/p1|"+id+"|2|checked" {
		t.Errorf("closed report %+v", c)
	}
	ev = st.events[2]
	if ev.Action != audit.ActionAccessReportClose || ev.Agent != officer || ev.Purpose != "HOPERAT" || !slices.Equal(ev.Patients, []string{"Patient/p1"}) ||
		!slices.Equal(ev.Entities, []string{"AccessReport/" + id, "AuditEvent/42"}) || ev.RequestID != "req-3" || ev.Status != 303 {
		t.Errorf("close event %+v", ev)
	}
	// Closed meanwhile: a conflict, and nothing more recorded.
	if err := r.Close(ctx, by, got, ""); !errors.Is(err, storage.ErrConflict) || len(st.events) != 3 {
		t.Errorf("second close: %v, %d events; want ErrConflict and no new event", err, len(st.events))
	}
}

// A transaction that fails as unavailable stores nothing and records
// nothing, and says so as the audit log's failure.
func TestReportUnavailable(t *testing.T) {
	r, st, _ := newReports(t, notes{})
	st.failTx = storage.ErrUnavailable
	_, err := r.Create(t.Context(), privacy.Actor{Agent: patient}, privacy.NewReport{Patient: "Patient/p1", Leaf: 1, Reporter: "usr_p"})
	if !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Create: %v, want audit.ErrUnavailable and storage.ErrUnavailable", err)
	}
	if _, err := r.Open(t.Context(), privacy.Actor{Agent: officer}, 10); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("Open: %v, want audit.ErrUnavailable", err)
	}
	if len(st.reports) != 0 || len(st.events) != 0 {
		t.Errorf("%d reports, %d events after failures, want none", len(st.reports), len(st.events))
	}
}

// A comment that cannot be opened is listed as unreadable.
func TestReportUnreadable(t *testing.T) {
	r, st, _ := newReports(t, notes{})
	if _, err := r.Create(t.Context(), privacy.Actor{Agent: patient}, privacy.NewReport{Patient: "Patient/p1", Leaf: 1, Reporter: "usr_p", Comment: "x"}); err != nil {
		t.Fatal(err)
	}
	r2, err := privacy.NewReports(privacy.Options{Tx: st, Store: st, Notes: notes{fail: true}, Log: st.log})
	if err != nil {
		t.Fatal(err)
	}
	list, err := r2.Open(t.Context(), privacy.Actor{Agent: officer}, 10)
	if err != nil || len(list) != 1 || !list[0].Unreadable || list[0].Text != "" {
		t.Errorf("Open = %+v, %v; want one unreadable comment", list, err)
	}
}
