package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// testMonitor: the monitoring tables (migration 0033, ADR 0046) upsert
// alerts by id with their patients, find them by dedup MAC and by
// patient and status, list them by score with every filter, keep notes,
// rules, runs, chunks and cursors, and roll back with the transaction.
func testMonitor(t *testing.T, s storage.Store) {
	ctx := t.Context()
	rd, ok := s.(storage.MonitorReader)
	if !ok {
		t.Fatalf("%T does not implement storage.MonitorReader", s)
	}
	update := func(fn func(storage.MonitorTx) error) error {
		return s.Update(ctx, func(tx storage.Tx) error {
			mt, ok := tx.(storage.MonitorTx)
			if !ok {
				return fmt.Errorf("%T does not implement storage.MonitorTx", tx)
			}
			return fn(mt)
		})
	}
	mac := func(s string) []byte { return []byte("mac\x00\xff" + s) }
	alert := func(id string, score float64, cat string, sec int, patients ...string) storage.MonitorAlert {
		a := storage.MonitorAlert{ID: id, Dedup: mac("k-" + id), Source: "his", Category: cat, Severity: "high", Score: score,
			Status: storage.AlertOpen, Created: at(sec), Updated: at(sec), First: at(sec - 100), Last: at(sec - 1),
			Body: []byte("sealed\x00" + id)}
		for _, p := range patients {
			a.Patients = append(a.Patients, mac(p))
		}
		return a
	}
	a1 := alert("a1", 0.9, "family", 10, "p1", "p2")
	a2 := alert("a2", 0.5, "browsing", 20, "p2")
	a3 := alert("a3", 0.7, "credential", 30)
	if err := update(func(t storage.MonitorTx) error {
		for _, a := range []storage.MonitorAlert{a1, a2, a3} {
			if err := t.PutMonitorAlert(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	equal := func(t *testing.T, got, want storage.MonitorAlert) {
		t.Helper()
		sortMACs := func(ps [][]byte) [][]byte {
			out := slices.Clone(ps)
			slices.SortFunc(out, bytes.Compare)
			return out
		}
		if got.ID != want.ID || !bytes.Equal(got.Dedup, want.Dedup) || got.Source != want.Source || got.Category != want.Category ||
			got.Severity != want.Severity || got.Score != want.Score || got.Status != want.Status || got.Suppressed != want.Suppressed ||
			got.Assignee != want.Assignee || !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) ||
			!got.First.Equal(want.First) || !got.Last.Equal(want.Last) || !bytes.Equal(got.Body, want.Body) ||
			!slices.EqualFunc(sortMACs(got.Patients), sortMACs(want.Patients), bytes.Equal) {
			t.Errorf("alert mismatch:\n got %+v\nwant %+v", got, want)
		}
	}
	got, err := rd.MonitorAlert(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, a1)
	if _, err := rd.MonitorAlert(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing alert: %v, want ErrNotFound", err)
	}
	if got, err := rd.MonitorAlertByDedup(ctx, mac("k-a2")); err != nil || got.ID != "a2" {
		t.Errorf("by dedup: %v %v", got.ID, err)
	}
	// A second alert with the same dedup is a conflict, and rolls back.
	dup := alert("a4", 0.1, "vip", 40)
	dup.Dedup = a1.Dedup
	if err := update(func(t storage.MonitorTx) error { return t.PutMonitorAlert(ctx, dup) }); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("duplicate dedup: %v, want ErrConflict", err)
	}

	list := func(f storage.MonitorFilter) []string {
		t.Helper()
		as, err := rd.MonitorAlerts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    storage.MonitorFilter
		want []string
	}{
		{"all by score", storage.MonitorFilter{}, []string{"a1", "a3", "a2"}},
		{"since", storage.MonitorFilter{Since: at(20)}, []string{"a3", "a2"}},
		{"min score", storage.MonitorFilter{MinScore: 0.6}, []string{"a1", "a3"}},
		{"limit", storage.MonitorFilter{Limit: 1}, []string{"a1"}},
		{"source", storage.MonitorFilter{Source: "other"}, nil},
		{"status", storage.MonitorFilter{Status: storage.AlertConfirmed}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The listing carries each alert's patients.
	if as, _ := rd.MonitorAlerts(ctx, storage.MonitorFilter{Limit: 1}); len(as) != 1 || len(as[0].Patients) != 2 {
		t.Errorf("listed alert without its patients: %+v", as)
	}

	// An update replaces columns and patients; suppressed alerts leave
	// the default listing.
	a2.Score, a2.Suppressed, a2.Updated, a2.Body = 0.95, "rule1", at(50), []byte("sealed again")
	a2.Patients = [][]byte{mac("p3")}
	if err := update(func(t storage.MonitorTx) error { return t.PutMonitorAlert(ctx, a2) }); err != nil {
		t.Fatal(err)
	}
	got, _ = rd.MonitorAlert(ctx, "a2")
	equal(t, got, a2)
	if got := list(storage.MonitorFilter{}); !slices.Equal(got, []string{"a1", "a3"}) {
		t.Errorf("suppressed alert listed: %v", got)
	}
	if got := list(storage.MonitorFilter{Suppressed: true}); !slices.Equal(got, []string{"a2", "a1", "a3"}) {
		t.Errorf("with suppressed: %v", got)
	}

	// Status, assignee; by patient and status.
	if err := update(func(t storage.MonitorTx) error {
		if err := t.SetMonitorAlertStatus(ctx, "a1", storage.AlertConfirmed, at(60)); err != nil {
			return err
		}
		return t.SetMonitorAlertAssignee(ctx, "a1", "u-officer", at(61))
	}); err != nil {
		t.Fatal(err)
	}
	if err := update(func(t storage.MonitorTx) error {
		return t.SetMonitorAlertStatus(ctx, "nope", storage.AlertConfirmed, at(60))
	}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("status of a missing alert: %v", err)
	}
	if err := update(func(t storage.MonitorTx) error { return t.SetMonitorAlertStatus(ctx, "a1", "closed", at(60)) }); err == nil {
		t.Error("an unknown status was stored")
	}
	got, _ = rd.MonitorAlert(ctx, "a1")
	if got.Status != storage.AlertConfirmed || got.Assignee != "u-officer" || !got.Updated.Equal(at(61)) {
		t.Errorf("after triage: %+v", got)
	}
	ofP := func(p, status string) []string {
		t.Helper()
		as, err := rd.MonitorAlertsOfPatient(ctx, mac(p), status)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	if got := ofP("p2", storage.AlertConfirmed); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("confirmed of p2: %v", got)
	}
	if got := ofP("p3", storage.AlertConfirmed); len(got) != 0 {
		t.Errorf("confirmed of p3: %v", got)
	}
	if got := ofP("p3", storage.AlertOpen); !slices.Equal(got, []string{"a2"}) {
		t.Errorf("open of p3: %v", got)
	}

	// Notes.
	n1 := storage.MonitorNote{ID: "n1", Alert: "a1", Author: "u-officer", Created: at(70), Body: []byte("sealed note")}
	n2 := storage.MonitorNote{ID: "n2", Alert: "a1", Author: "u-other", Created: at(71), Body: []byte("sealed note 2")}
	if err := update(func(t storage.MonitorTx) error {
		if err := t.InsertMonitorNote(ctx, n2); err != nil {
			return err
		}
		return t.InsertMonitorNote(ctx, n1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := update(func(t storage.MonitorTx) error {
		return t.InsertMonitorNote(ctx, storage.MonitorNote{ID: "n3", Alert: "nope", Created: at(1), Body: []byte("x")})
	}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("note on a missing alert: %v", err)
	}
	if err := update(func(t storage.MonitorTx) error { return t.InsertMonitorNote(ctx, n1) }); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("note id twice: %v", err)
	}
	ns, err := rd.MonitorNotes(ctx, "a1")
	if err != nil || len(ns) != 2 || ns[0].ID != "n1" || ns[1].ID != "n2" || !bytes.Equal(ns[0].Body, n1.Body) || !ns[0].Created.Equal(at(70)) || ns[0].Author != "u-officer" {
		t.Errorf("notes: %+v %v", ns, err)
	}

	// Suppression rules: nil scopes stay nil.
	r1 := storage.MonitorSuppression{ID: "r1", Source: "his", User: mac("u1"), Category: "family", Author: "u-officer", Created: at(80), Alert: "a1", Body: []byte("sealed rule")}
	r2 := storage.MonitorSuppression{ID: "r2", Source: "his", Patient: mac("p9"), Author: "u-officer", Created: at(81), Body: []byte("sealed rule 2")}
	if err := update(func(t storage.MonitorTx) error {
		if err := t.InsertMonitorSuppression(ctx, r1); err != nil {
			return err
		}
		return t.InsertMonitorSuppression(ctx, r2)
	}); err != nil {
		t.Fatal(err)
	}
	rs, err := rd.MonitorSuppressions(ctx, "his")
	if err != nil || len(rs) != 2 || rs[0].ID != "r1" || rs[0].Patient != nil || !bytes.Equal(rs[0].User, r1.User) ||
		rs[1].User != nil || !bytes.Equal(rs[1].Patient, r2.Patient) || rs[0].Category != "family" || rs[0].Alert != "a1" || !bytes.Equal(rs[1].Body, r2.Body) {
		t.Errorf("rules: %+v %v", rs, err)
	}
	if rs, err := rd.MonitorSuppressions(ctx, "other"); err != nil || len(rs) != 0 {
		t.Errorf("rules of another source: %+v %v", rs, err)
	}

	// Runs and their chunks.
	run := storage.MonitorRun{ID: "run1", Source: "his", Actor: "u-officer", Started: at(90), State: "running"}
	if err := update(func(t storage.MonitorTx) error {
		if err := t.InsertMonitorRun(ctx, run); err != nil {
			return err
		}
		for i := range 70 { // more than one page
			if err := t.PutMonitorChunk(ctx, storage.MonitorChunk{Run: "run1", Seq: int64(i + 1), Kind: "events", Body: fmt.Appendf(nil, "c%d", i+1)}); err != nil {
				return err
			}
		}
		return t.PutMonitorChunk(ctx, storage.MonitorChunk{Run: "run2", Seq: 1, Kind: "context", Body: []byte("other")})
	}); err != nil {
		t.Fatal(err)
	}
	if err := update(func(t storage.MonitorTx) error {
		return t.PutMonitorChunk(ctx, storage.MonitorChunk{Run: "run1", Seq: 3, Kind: "events", Body: []byte("x")})
	}); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("chunk seq twice: %v", err)
	}
	var seqs []int64
	if err := rd.MonitorChunks(ctx, "run1", func(c storage.MonitorChunk) error {
		if string(c.Body) != fmt.Sprintf("c%d", c.Seq) || c.Kind != "events" {
			return fmt.Errorf("chunk %d: %q %q", c.Seq, c.Body, c.Kind)
		}
		seqs = append(seqs, c.Seq)
		return nil
	}); err != nil || len(seqs) != 70 || !slices.IsSorted(seqs) {
		t.Errorf("chunks: %v %v", seqs, err)
	}
	run.Finished, run.State, run.Events, run.Alerts, run.Suppressed, run.Bytes = at(95), "done", 1000, 3, 1, 123456
	if err := update(func(t storage.MonitorTx) error { return t.FinishMonitorRun(ctx, run) }); err != nil {
		t.Fatal(err)
	}
	runs, err := rd.MonitorRuns(ctx, 10)
	if err != nil || len(runs) != 1 || runs[0] != run {
		t.Errorf("runs: %+v %v, want %+v", runs, err, run)
	}

	// Cursors.
	if pos, err := rd.MonitorCursor(ctx, "own-log"); err != nil || pos != 0 {
		t.Errorf("unset cursor: %d %v", pos, err)
	}
	for _, p := range []int64{41, 42} {
		if err := update(func(t storage.MonitorTx) error { return t.SetMonitorCursor(ctx, "own-log", p, at(100)) }); err != nil {
			t.Fatal(err)
		}
	}
	if pos, err := rd.MonitorCursor(ctx, "own-log"); err != nil || pos != 42 {
		t.Errorf("cursor: %d %v", pos, err)
	}

	// A failing transaction leaves nothing.
	if err := update(func(t storage.MonitorTx) error {
		if err := t.PutMonitorAlert(ctx, alert("gone", 1, "vip", 5, "p1")); err != nil {
			return err
		}
		if err := t.SetMonitorCursor(ctx, "own-log", 99, at(101)); err != nil {
			return err
		}
		return errAuditFailed
	}); !errors.Is(err, errAuditFailed) {
		t.Fatalf("failing fn: %v", err)
	}
	if _, err := rd.MonitorAlert(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rolled-back alert: %v", err)
	}
	if pos, _ := rd.MonitorCursor(ctx, "own-log"); pos != 42 {
		t.Errorf("rolled-back cursor: %d", pos)
	}
}
