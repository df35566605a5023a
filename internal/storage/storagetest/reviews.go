package storagetest

import (
	"bytes"
	"context"
	"errors"
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
