package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
)

// DefaultGrantTTL is how long a break-the-glass grant lasts unless the
// deployment says otherwise: long enough for an emergency episode, short
// enough that a forgotten grant closes itself (DESIGN §8).
const DefaultGrantTTL = 60 * time.Minute

// MaxGrantTTL bounds a configured grant lifetime.
const MaxGrantTTL = 24 * time.Hour

// Grant is a break-the-glass grant: one user, one patient, until
// Expires. It is a value of its own, never a flag on a user or a
// session, so it cannot outlive its expiry or spread to other patients.
type Grant struct {
	ID      string
	UserID  string // the account that broke the glass
	Patient string // "Patient/<id>"
	Reason  string // the v3 PurposeOfUse / ActReason code given (e.g. ETREAT); free text is kept sealed
	Created time.Time
	Expires time.Time
}

// Covers reports whether g grants access to patient at now.
func (g Grant) Covers(patient string, now time.Time) bool {
	return g.Patient == patient && !now.Before(g.Created) && now.Before(g.Expires)
}

// Review is a review-queue entry a privacy officer must close: one per
// break-the-glass grant.
type Review struct {
	ID       string
	GrantID  string
	UserID   string
	Patient  string
	Reason   string
	Created  time.Time
	Expires  time.Time // the grant's expiry
	Closed   bool
	ClosedBy string // account id of the privacy officer
	ClosedAt time.Time
	Outcome  string // "appropriate" or "inappropriate"
	Noted    bool   // the reviewer left a note (kept sealed with the patient's key)
}

// Alert is a high-priority alert record raised by an authorization
// event (today: a break-the-glass grant).
type Alert struct {
	ID       string
	Kind     string // "break-glass"
	Priority string // "high"
	UserID   string
	Patient  string
	Ref      string // "Grant/<id>" of a break-the-glass alert
	Created  time.Time
	// Closed is when the alert was closed (zero while open): a
	// break-the-glass alert closes with the review of its grant.
	Closed       time.Time
	ClosedBy     string // the reviewer's account id
	ClosedReview string // the review that covered it
}

// AlertBreakGlass is the kind of the alert a break-the-glass grant
// raises.
const AlertBreakGlass = "break-glass"

// GrantStore persists grants, their review-queue entries and alerts.
// Implementations are safe for concurrent use; errors wrap the storage
// sentinels.
type GrantStore interface {
	// ActiveGrants returns userID's grants that have not expired at now.
	ActiveGrants(ctx context.Context, userID string, now time.Time) ([]Grant, error)
}

// GrantWriter opens grants: the grant, its sealed free-text reason, its
// review-queue entry and its alert commit together, with the audit
// record, or not at all.
type GrantWriter interface {
	CreateGrant(ctx context.Context, g Grant, sealedNote []byte, r Review, a Alert, audit []byte) error
}

// ReviewStore is the privacy officer's queue (a privileged capability).
type ReviewStore interface {
	// Reviews lists up to limit entries, open ones only when open is true,
	// newest first.
	Reviews(ctx context.Context, open bool, limit int) ([]Review, error)
	// Review returns entry id; ErrNotFound-wrapped when unknown.
	Review(ctx context.Context, id string) (Review, error)
	// GrantNote returns the sealed free text of grant id (nil for none).
	GrantNote(ctx context.Context, grantID string) ([]byte, error)
	// Alerts lists up to limit alerts, newest first.
	Alerts(ctx context.Context, limit int) ([]Alert, error)
}

// Desk is the privacy officer's review queue with auditing: closing a
// review commits with its audit event in one transaction (the store's
// unit of work, ADR 0024); reading a grant's reason appends its event
// (durable before Reason returns).
type Desk struct {
	store ReviewStore
	tx    Updater
	notes NoteSealer
	log   *audit.Log
	rec   AuditRecorder
	now   func() time.Time
}

// NewDesk returns a Desk; now is time.Now when nil. tx is the unit of
// work closing reviews with their audit events; notes seals the
// reviewers' notes with the patient's key.
func NewDesk(store ReviewStore, tx Updater, notes NoteSealer, log *audit.Log, rec AuditRecorder, now func() time.Time) *Desk {
	if now == nil {
		now = time.Now
	}
	return &Desk{store: store, tx: tx, notes: notes, log: log, rec: rec, now: now}
}

// maxReviewNote bounds a reviewer's note, in characters.
const maxReviewNote = 2000

// NoteOpener opens notes sealed with a patient's key (the record).
type NoteOpener interface {
	OpenNote(ctx context.Context, owner, grantID string, sealed []byte) ([]byte, error)
}

// Reason returns the free text the clinician gave when breaking the
// glass, for the privacy officer reviewing it. The read is audited
// (ActionReviewRead, the patient and the grant) before the text is
// returned; if that fails, nothing is returned. "" when there is none.
func (d *Desk) Reason(ctx context.Context, agent audit.Agent, requestID, id string) (string, error) {
	opener, ok := d.notes.(NoteOpener)
	if !ok {
		return "", errors.New("review reason: notes cannot be opened")
	}
	rv, err := d.store.Review(ctx, id)
	if err != nil {
		return "", err
	}
	sealed, err := d.store.GrantNote(ctx, rv.GrantID)
	if err != nil || len(sealed) == 0 {
		return "", err
	}
	ev := audit.Event{Time: d.now(), Action: audit.ActionReviewRead, Outcome: audit.OutcomeSuccess, Agent: agent,
		Patients: []string{rv.Patient}, Entities: []string{"Review/" + rv.ID, "Grant/" + rv.GrantID}, Purpose: "HOPERAT", RequestID: requestID}
	rec, err := d.log.Seal(ev)
	if err != nil {
		return "", err
	}
	if err := d.rec.Record(ctx, rec); err != nil {
		return "", err
	}
	text, err := opener.OpenNote(ctx, rv.Patient, rv.GrantID, sealed)
	if err != nil {
		return "", fmt.Errorf("review reason: %w", err)
	}
	return string(text), nil
}

// List lists reviews (open only when open).
func (d *Desk) List(ctx context.Context, open bool, limit int) ([]Review, error) {
	return d.store.Reviews(ctx, open, limit)
}

// Alerts lists alerts, newest first.
func (d *Desk) Alerts(ctx context.Context, limit int) ([]Alert, error) {
	return d.store.Alerts(ctx, limit)
}

// Close closes review id with outcome, the open break-the-glass alerts
// of its grant, and its audit event (ActionReviewClose; Entities name
// the review, the grant and each alert closed) in one transaction. It returns an error wrapping
// storage.ErrNotFound for no such review and storage.ErrConflict for one
// already closed (nothing is recorded then).
//
// note is the reviewer's free text ("" for none): it may name people or
// clinical facts, so it is sealed with the patient's key (erased with the
// patient) and never logged or put in the audit event. A note that is
// not valid UTF-8, holds control characters other than newlines and
// tabs, or exceeds 2,000 characters wraps ErrBadRequest.
func (d *Desk) Close(ctx context.Context, agent audit.Agent, requestID, id, outcome, note string) (Review, error) {
	var sealed []byte
	if strings.TrimSpace(note) != "" {
		if !utf8.ValidString(note) || utf8.RuneCountInString(note) > maxReviewNote || strings.IndexFunc(note, func(c rune) bool {
			return unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t'
		}) >= 0 {
			return Review{}, fmt.Errorf("the note must be text of at most %d characters: %w", maxReviewNote, ErrBadRequest)
		}
		rv, err := d.store.Review(ctx, id)
		if err != nil {
			return Review{}, err
		}
		if d.notes == nil {
			return Review{}, errors.New("close review: no note sealer")
		}
		if sealed, err = d.notes.SealNote(ctx, rv.Patient, "Review/"+id, []byte(note)); err != nil {
			return Review{}, fmt.Errorf("close review: sealing the note: %w", err)
		}
	}
	at := d.now()
	var out Review
	err := d.tx.Update(ctx, func(t Tx) error {
		r, err := t.CloseReview(ctx, id, agent.User, outcome, sealed, at)
		if err != nil {
			return err
		}
		alerts, err := t.CloseAlerts(ctx, AlertBreakGlass, "Grant/"+r.GrantID, agent.User, r.ID, at)
		if err != nil {
			return err
		}
		ev := audit.Event{Time: d.now(), Action: audit.ActionReviewClose, Outcome: audit.OutcomeSuccess, Agent: agent,
			Patients: []string{r.Patient}, Entities: []string{"Review/" + r.ID, "Grant/" + r.GrantID}, Policies: []string{"outcome=" + outcome}, RequestID: requestID}
		for _, a := range alerts {
			ev.Entities = append(ev.Entities, "Alert/"+a)
		}
		rec, err := d.log.Seal(ev)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Review{}, err
	}
	return out, nil
}
