package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
)

// ReportStores are the access-report stores: the reads and the audit
// table (sqldb.Store), and the unit of work seen through privacy.Tx
// (sqldb.NewUnit[privacy.Tx], ADR 0024).
type ReportStores struct {
	Store interface {
		privacy.Store
		ScanAudit(ctx context.Context, after int64, fn func(seq int64, rec storage.AuditRecord) error) error
	}
	Unit privacy.Updater
}

// RunReports is the access-report conformance suite, each case on a
// database of its own.
func RunReports(t *testing.T, open func(t *testing.T) ReportStores) {
	t.Run("CreateListClose", func(t *testing.T) { testReports(t, open(t)) })
	t.Run("ReportAtomic", func(t *testing.T) { testReportAtomic(t, open(t)) })
}

// testReports: create, list the open ones oldest first, close once
// (again: ErrConflict; unknown: ErrNotFound), sealed bytes kept exactly,
// empty comment as none.
func testReports(t *testing.T, st ReportStores) {
	s := newReportOps(st)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 123000, time.UTC)
	a := storage.AccessReport{ID: "r-a", Patient: "Patient/p1", Leaf: 42, Reporter: "u1", Created: t0, Comment: []byte{0, 1, 2, 0xff}}
	b := storage.AccessReport{ID: "r-b", Patient: "Patient/p2", Leaf: 7, Reporter: "u2", Created: t0.Add(time.Minute)}
	for _, r := range []storage.AccessReport{b, a} {
		if err := s.CreateAccessReport(ctx, r); err != nil {
			t.Fatalf("create %s: %v", r.ID, err)
		}
	}
	if err := s.CreateAccessReport(ctx, a); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("second create of r-a: %v, want ErrConflict", err)
	}
	got, err := s.OpenAccessReports(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "r-a" || got[1].ID != "r-b" {
		t.Fatalf("open reports %+v, want r-a then r-b", got)
	}
	if g := got[0]; g.Patient != a.Patient || g.Leaf != 42 || g.Reporter != "u1" || !g.Created.Equal(t0) || !bytes.Equal(g.Comment, a.Comment) || !g.Closed.IsZero() {
		t.Errorf("r-a read back as %+v", g)
	}
	if got[1].Comment != nil {
		t.Errorf("r-b comment %v, want none", got[1].Comment)
	}
	at := t0.Add(time.Hour)
	if err := s.CloseAccessReport(ctx, "r-a", "po1", at, []byte("sealed-note")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseAccessReport(ctx, "r-a", "po1", at, nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("closing twice: %v, want ErrConflict", err)
	}
	if err := s.CloseAccessReport(ctx, "r-none", "po1", at, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("closing an unknown report: %v, want ErrNotFound", err)
	}
	r, err := s.AccessReport(ctx, "r-a")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Closed.Equal(at) || r.Closer != "po1" || string(r.CloseNote) != "sealed-note" {
		t.Errorf("closed report %+v", r)
	}
	if _, err := s.AccessReport(ctx, "r-none"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown report: %v, want ErrNotFound", err)
	}
	got, err = s.OpenAccessReports(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != "r-b" {
		t.Fatalf("open reports after closing r-a: %+v, %v", got, err)
	}
}

// reportOps runs each statement of privacy.Tx in a transaction of its
// own, with the reads beside them.
type reportOps struct {
	privacy.Store
	u privacy.Updater
}

func newReportOps(st ReportStores) reportOps { return reportOps{Store: st.Store, u: st.Unit} }

func (o reportOps) CreateAccessReport(ctx context.Context, r storage.AccessReport) error {
	return o.u.Update(ctx, func(t privacy.Tx) error { return t.InsertAccessReport(ctx, r) })
}

func (o reportOps) CloseAccessReport(ctx context.Context, id, closer string, at time.Time, note []byte) error {
	return o.u.Update(ctx, func(t privacy.Tx) error { return t.CloseAccessReport(ctx, id, closer, at, note) })
}

// testReportAtomic: a report and its closing commit with their audit
// record or not at all; a failing fn rolls both back.
func testReportAtomic(t *testing.T, st ReportStores) {
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	r := storage.AccessReport{ID: "r-atomic", Patient: "Patient/p1", Leaf: 3, Reporter: "u1", Created: t0, Comment: []byte("sealed")}
	audited := func(body string) bool {
		t.Helper()
		found := false
		if err := st.Store.ScanAudit(ctx, 0, func(_ int64, rec storage.AuditRecord) error {
			found = found || bytes.Equal(rec.Body, []byte(body))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	record := func(body string) storage.AuditRecord { return storage.AuditRecord{Time: t0, Body: []byte(body)} }

	err := st.Unit.Update(ctx, func(tx privacy.Tx) error {
		if err := tx.InsertAccessReport(ctx, r); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, record("create-failed")); err != nil {
			return err
		}
		return errAuditFailed
	})
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("Update with a failing fn: %v, want its error", err)
	}
	if _, err := st.Store.AccessReport(ctx, r.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("report after a failed fn: %v, want ErrNotFound (rolled back)", err)
	}
	if audited("create-failed") {
		t.Error("the audit record of a failed fn was kept")
	}

	if err := st.Unit.Update(ctx, func(tx privacy.Tx) error {
		if err := tx.InsertAccessReport(ctx, r); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, record("created"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store.AccessReport(ctx, r.ID); err != nil || !audited("created") {
		t.Fatalf("report after commit: %v, audited %v; want both", err, audited("created"))
	}

	at := t0.Add(time.Hour)
	err = st.Unit.Update(ctx, func(tx privacy.Tx) error {
		if err := tx.CloseAccessReport(ctx, r.ID, "po1", at, []byte("note")); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, record("close-failed")); err != nil {
			return err
		}
		return errAuditFailed
	})
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("close with a failing fn: %v, want its error", err)
	}
	if got, err := st.Store.AccessReport(ctx, r.ID); err != nil || !got.Closed.IsZero() || got.CloseNote != nil {
		t.Errorf("report after a failed close: %+v, %v; want it open", got, err)
	}
	if audited("close-failed") {
		t.Error("the audit record of a failed close was kept")
	}
	if err := st.Unit.Update(ctx, func(tx privacy.Tx) error {
		if err := tx.CloseAccessReport(ctx, r.ID, "po1", at, []byte("note")); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, record("closed"))
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Store.AccessReport(ctx, r.ID); err != nil || !got.Closed.Equal(at) || !audited("closed") {
		t.Errorf("report after a committed close: %+v, %v, audited %v", got, err, audited("closed"))
	}
}
