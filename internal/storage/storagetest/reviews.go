package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// ReviewStores are the break-the-glass review stores: the queue's reads
// (sqldb.Authz), the audit table (sqldb.Store), and the unit of work
// seen through authz.Tx (sqldb.NewUnit[authz.Tx], ADR 0024).
type ReviewStores struct {
	Reviews authz.ReviewStore
	Audit   interface {
		ScanAudit(ctx context.Context, after int64, fn func(seq int64, rec storage.AuditRecord) error) error
	}
	Unit authz.Updater
}

// RunReviews is the review-closing conformance suite: a review closes
// once (again: ErrConflict; unknown: ErrNotFound), with its audit record
// in the same transaction or not at all.
func RunReviews(t *testing.T, open func(t *testing.T) ReviewStores) {
	t.Run("CloseAtomic", func(t *testing.T) { testReviewCloseAtomic(t, open(t)) })
	t.Run("CloseRacing", func(t *testing.T) { testReviewCloseRacing(t, open(t)) })
	t.Run("CloseAlerts", func(t *testing.T) { testCloseAlerts(t, open(t)) })
}

// The alerts of a grant close with its review (migration 0031): only
// that grant's open ones of that kind, once, and not when the
// transaction fails.
func testCloseAlerts(t *testing.T, st ReviewStores) {
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	if err := st.Unit.Update(ctx, func(tx authz.Tx) error {
		for _, a := range []authz.Alert{
			{ID: "al1", Kind: authz.AlertBreakGlass, Priority: "high", UserID: "usr_doc", Patient: "Patient/p1", Ref: "Grant/g1", Created: t0},
			{ID: "al2", Kind: authz.AlertBreakGlass, Priority: "high", UserID: "usr_doc", Patient: "Patient/p1", Ref: "Grant/g2", Created: t0.Add(time.Minute)},
			{ID: "al3", Kind: "other", Priority: "high", UserID: "usr_doc", Patient: "Patient/p1", Ref: "Grant/g1", Created: t0.Add(2 * time.Minute)},
		} {
			if err := tx.RaiseAlert(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	closeAlerts := func(fail error) ([]string, error) {
		var ids []string
		err := st.Unit.Update(ctx, func(tx authz.Tx) error {
			var err error
			ids, err = tx.CloseAlerts(ctx, authz.AlertBreakGlass, "Grant/g1", "usr_po", "rv1", at)
			if err != nil {
				return err
			}
			return fail
		})
		return ids, err
	}
	state := func() map[string]authz.Alert {
		as, err := st.Reviews.Alerts(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]authz.Alert{}
		for _, a := range as {
			out[a.ID] = a
		}
		return out
	}
	if _, err := closeAlerts(errAuditFailed); !errors.Is(err, errAuditFailed) {
		t.Fatalf("close with a failing fn: %v", err)
	}
	if a := state()["al1"]; !a.Closed.IsZero() {
		t.Fatalf("after a failed transaction the alert is closed: %+v", a)
	}
	ids, err := closeAlerts(nil)
	if err != nil || len(ids) != 1 || ids[0] != "al1" {
		t.Fatalf("CloseAlerts = %v, %v; want [al1]", ids, err)
	}
	as := state()
	if a := as["al1"]; !a.Closed.Equal(at) || a.ClosedBy != "usr_po" || a.ClosedReview != "rv1" {
		t.Errorf("closed alert %+v", a)
	}
	if !as["al2"].Closed.IsZero() || !as["al3"].Closed.IsZero() {
		t.Errorf("another grant's or kind's alert closed: %+v %+v", as["al2"], as["al3"])
	}
	if ids, err := closeAlerts(nil); err != nil || len(ids) != 0 {
		t.Errorf("closing again: %v, %v; want none", ids, err)
	}
}

// Privacy officers closing one review at once: exactly one close wins
// and is audited; the others answer ErrConflict and record nothing.
// (On PostgreSQL every close reads the review open under READ
// COMMITTED: the update itself must be conditional.)
func testReviewCloseRacing(t *testing.T, st ReviewStores) {
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	g := authz.Grant{ID: "g2", UserID: "usr_doc", Patient: "Patient/p2", Reason: "ETREAT", Created: t0, Expires: t0.Add(time.Hour)}
	rv := authz.Review{ID: "rv2", GrantID: g.ID, UserID: g.UserID, Patient: g.Patient, Reason: g.Reason, Created: t0, Expires: g.Expires}
	if err := st.Unit.Update(ctx, func(tx authz.Tx) error {
		if err := tx.InsertGrant(ctx, g, nil); err != nil {
			return err
		}
		return tx.InsertReview(ctx, rv, g)
	}); err != nil {
		t.Fatal(err)
	}
	// The first close holds its transaction open after closing; the
	// second starts then, reads the review (still open: the first has
	// not committed) and tries to close it while the first commits.
	const n = 2
	errs := make([]error, n)
	closed := make(chan struct{})
	closeIt := func(i int, hold bool) error {
		return st.Unit.Update(ctx, func(tx authz.Tx) error {
			if _, err := tx.CloseReview(ctx, "rv2", fmt.Sprintf("usr_po%d", i), "appropriate", nil, t0.Add(2*time.Hour)); err != nil {
				return err
			}
			if hold {
				select {
				case <-closed:
				default:
					close(closed)
				}
				time.Sleep(300 * time.Millisecond)
			}
			return tx.AppendAudit(ctx, storage.AuditRecord{Time: t0, Body: fmt.Appendf(nil, "race-close-%d", i)})
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = closeIt(0, true) })
	wg.Go(func() {
		<-closed
		errs[1] = closeIt(1, false)
	})
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("close %d: %v, want success or ErrConflict", i, err)
		}
	}
	records := 0
	if err := st.Audit.ScanAudit(ctx, 0, func(_ int64, rec storage.AuditRecord) error {
		if bytes.HasPrefix(rec.Body, []byte("race-close-")) {
			records++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if won != 1 || records != 1 {
		t.Fatalf("%d of %d racing closes won, %d audited; want exactly one of each", won, n, records)
	}
}

func testReviewCloseAtomic(t *testing.T, st ReviewStores) {
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	g := authz.Grant{ID: "g1", UserID: "usr_doc", Patient: "Patient/p1", Reason: "ETREAT", Created: t0, Expires: t0.Add(time.Hour)}
	rv := authz.Review{ID: "rv1", GrantID: g.ID, UserID: g.UserID, Patient: g.Patient, Reason: g.Reason, Created: t0, Expires: g.Expires}
	if err := st.Unit.Update(ctx, func(tx authz.Tx) error {
		if err := tx.InsertGrant(ctx, g, nil); err != nil {
			return err
		}
		return tx.InsertReview(ctx, rv, g)
	}); err != nil {
		t.Fatal(err)
	}
	audited := func(body string) bool {
		t.Helper()
		found := false
		if err := st.Audit.ScanAudit(ctx, 0, func(_ int64, rec storage.AuditRecord) error {
			found = found || bytes.Equal(rec.Body, []byte(body))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	at := t0.Add(2 * time.Hour)
	closeWith := func(body string, fail error) (authz.Review, error) {
		var out authz.Review
		err := st.Unit.Update(ctx, func(tx authz.Tx) error {
			r, err := tx.CloseReview(ctx, "rv1", "usr_po", "appropriate", []byte("sealed"), at)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, storage.AuditRecord{Time: at, Body: []byte(body)}); err != nil {
				return err
			}
			out = r
			return fail
		})
		return out, err
	}
	if _, err := closeWith("close-failed", errAuditFailed); !errors.Is(err, errAuditFailed) {
		t.Fatalf("close with a failing fn: %v, want its error", err)
	}
	if got, err := st.Reviews.Review(ctx, "rv1"); err != nil || got.Closed || audited("close-failed") {
		t.Fatalf("after a failed fn: %+v, %v, audited %v; want it open and nothing recorded", got, err, audited("close-failed"))
	}
	r, err := closeWith("closed", nil)
	if err != nil || !r.Closed || r.ClosedBy != "usr_po" || !r.ClosedAt.Equal(at) || r.Outcome != "appropriate" || !r.Noted || r.Patient != "Patient/p1" || r.GrantID != "g1" {
		t.Fatalf("close = %+v, %v", r, err)
	}
	if got, err := st.Reviews.Review(ctx, "rv1"); err != nil || !got.Closed || !got.ClosedAt.Equal(at) || !got.Noted || !audited("closed") {
		t.Fatalf("after commit: %+v, %v, audited %v", got, err, audited("closed"))
	}
	if _, err := closeWith("again", nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("closing twice: %v, want ErrConflict", err)
	}
	for _, id := range []string{"rv-none", "", "nul\x00id"} {
		err := st.Unit.Update(ctx, func(tx authz.Tx) error {
			_, err := tx.CloseReview(ctx, id, "usr_po", "appropriate", nil, at)
			return err
		})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("closing %q: %v, want ErrNotFound", id, err)
		}
	}
}
