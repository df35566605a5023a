package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// plainSealer seals nothing: the audit records stay readable.
type plainSealer struct{}

func (plainSealer) SealAudit(_ string, b []byte) ([]byte, error) { return b, nil }
func (plainSealer) OpenAudit(_ string, b []byte) ([]byte, error) { return b, nil }

// deskStore is the review table and the audit table behind a fake unit
// of work: a failing fn leaves both as they were.
type deskStore struct {
	log       *audit.Log
	reviews   map[string]authz.Review
	alerts    map[string]authz.Alert
	events    []audit.Event
	failAudit error
}

// deskTx implements the methods of authz.Tx that closing a review uses;
// the others panic (the embedded nil interface).
type deskTx struct {
	authz.Tx
	st      *deskStore
	reviews map[string]authz.Review
	alerts  map[string]authz.Alert
	events  []audit.Event
}

func (s *deskStore) Update(_ context.Context, fn func(authz.Tx) error) error {
	t := &deskTx{st: s, reviews: map[string]authz.Review{}, alerts: map[string]authz.Alert{}, events: slices.Clone(s.events)}
	for k, v := range s.reviews {
		t.reviews[k] = v
	}
	for k, v := range s.alerts {
		t.alerts[k] = v
	}
	if err := fn(t); err != nil {
		return err
	}
	s.reviews, s.alerts, s.events = t.reviews, t.alerts, t.events
	return nil
}

func (t *deskTx) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	if t.st.failAudit != nil {
		return t.st.failAudit
	}
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

func (t *deskTx) CloseReview(_ context.Context, id, by, outcome string, note []byte, at time.Time) (authz.Review, error) {
	r, ok := t.reviews[id]
	switch {
	case !ok:
		return authz.Review{}, storage.ErrNotFound
	case r.Closed:
		return authz.Review{}, storage.ErrConflict
	}
	r.Closed, r.ClosedBy, r.ClosedAt, r.Outcome, r.Noted = true, by, at, outcome, len(note) > 0
	t.reviews[id] = r
	return r, nil
}

func (t *deskTx) CloseAlerts(_ context.Context, kind, ref, by, review string, at time.Time) ([]string, error) {
	var ids []string
	for id, a := range t.alerts {
		if a.Kind == kind && a.Ref == ref && a.Closed.IsZero() {
			a.Closed, a.ClosedBy, a.ClosedReview = at, by, review
			t.alerts[id] = a
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// A review closes with its audit event in one transaction: a failing
// audit record leaves it open, an already closed one is a conflict and
// records nothing.
func TestDeskCloseAtomic(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	log := audit.NewLog(plainSealer{})
	st := &deskStore{log: log, reviews: map[string]authz.Review{
		"rv1": {ID: "rv1", GrantID: "g1", UserID: "usr_doc", Patient: "Patient/p1", Reason: "ETREAT", Created: now.Add(-time.Hour)},
	}, alerts: map[string]authz.Alert{
		"al1":   {ID: "al1", Kind: authz.AlertBreakGlass, Ref: "Grant/g1"},
		"other": {ID: "other", Kind: authz.AlertBreakGlass, Ref: "Grant/g2"},
	}}
	d := authz.NewDesk(nil, st, nil, log, nil, func() time.Time { return now })
	agent := audit.Agent{User: "usr_po", Role: "privacy-officer", Client: "webui"}

	errDown := errors.New("audit table unavailable")
	st.failAudit = errDown
	if _, err := d.Close(t.Context(), agent, "req-1", "rv1", "appropriate", ""); !errors.Is(err, errDown) {
		t.Fatalf("Close with a failing audit record: %v, want it returned", err)
	}
	if st.reviews["rv1"].Closed || len(st.events) != 0 || !st.alerts["al1"].Closed.IsZero() {
		t.Fatalf("after a failed audit record: %+v, %+v, %d events; want the review and its alert open and nothing recorded", st.reviews["rv1"], st.alerts["al1"], len(st.events))
	}

	st.failAudit = nil
	r, err := d.Close(t.Context(), agent, "req-2", "rv1", "appropriate", "")
	if err != nil || !r.Closed || r.ClosedBy != "usr_po" || !r.ClosedAt.Equal(now) || r.Outcome != "appropriate" {
		t.Fatalf("Close = %+v, %v", r, err)
	}
	if len(st.events) != 1 {
		t.Fatalf("%d events, want 1", len(st.events))
	}
	ev := st.events[0]
	if ev.Action != audit.ActionReviewClose || ev.Outcome != audit.OutcomeSuccess || ev.Agent != agent || !ev.Time.Equal(now) ||
		!slices.Equal(ev.Patients, []string{"Patient/p1"}) || !slices.Equal(ev.Entities, []string{"Review/rv1", "Grant/g1", "Alert/al1"}) ||
		!slices.Equal(ev.Policies, []string{"outcome=appropriate"}) || ev.RequestID != "req-2" {
		t.Errorf("close event %+v", ev)
	}

	// The review's alert closed with it; another grant's did not.
	if a := st.alerts["al1"]; !a.Closed.Equal(now) || a.ClosedBy != "usr_po" || a.ClosedReview != "rv1" || !st.alerts["other"].Closed.IsZero() {
		t.Errorf("alerts after the close: %+v, %+v", a, st.alerts["other"])
	}
	if _, err := d.Close(t.Context(), agent, "req-3", "rv1", "inappropriate", ""); !errors.Is(err, storage.ErrConflict) || len(st.events) != 1 {
		t.Errorf("second close: %v, %d events; want ErrConflict and nothing recorded", err, len(st.events))
	}
	if _, err := d.Close(t.Context(), agent, "req-4", "rv-none", "appropriate", ""); !errors.Is(err, storage.ErrNotFound) || len(st.events) != 1 {
		t.Errorf("unknown review: %v, %d events; want ErrNotFound and nothing recorded", err, len(st.events))
	}
}
