package privacy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Correction requests (HIPAA §164.526, the right to amend): a patient
// asks to correct a part of their record, saying what is wrong and what
// it should say; the request reaches the privacy office's queue and the
// patient's care team (on the chart), and the privacy officer accepts
// or denies it. A denial states its reason; the patient sees the
// decision and, for a denial, their right to send a statement of
// disagreement (a request of part "disagreement") and to complain.
//
// The texts hold PHI: they are sealed with the patient's data key
// ([Notes]) before they are stored, never logged nor put in an event.
// Every change commits with its audit event in one transaction; every
// read of the texts is audited before they are opened.

// AmendTx is the part of one write transaction the correction requests
// use (sqldb's unit of work). Errors wrap the storage sentinels.
type AmendTx interface {
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// InsertAmendment stores a, open (ErrConflict for a known id).
	InsertAmendment(ctx context.Context, a storage.Amendment) error
	// DecideAmendment decides the open request id ("accepted" or
	// "denied"); ErrNotFound for no such request, ErrConflict for one
	// already decided.
	DecideAmendment(ctx context.Context, id, state, decider string, at time.Time, reason []byte) error
}

// AmendUpdater runs fn in one transaction (sqldb.NewUnit[privacy.AmendTx]).
type AmendUpdater interface {
	Update(ctx context.Context, fn func(AmendTx) error) error
}

// AmendStore reads correction requests (sqldb.Store).
type AmendStore interface {
	// Amendments lists up to limit requests, newest first: patient's
	// when not "", open ones only when open.
	Amendments(ctx context.Context, patient string, open bool, limit int) ([]storage.Amendment, error)
	// Amendment returns request id, or an error wrapping ErrNotFound.
	Amendment(ctx context.Context, id string) (storage.Amendment, error)
}

// AmendmentParts are the parts of a record a request can name, in the
// form's order, with their words.
var AmendmentParts = []struct{ Code, Words string }{
	{"details", "My details (name, birth date, address, contact)"},
	{"problems", "Health problems"},
	{"medications", "Medications"},
	{"allergies", "Allergies"},
	{"visits", "Visits"},
	{"results", "Results and measurements"},
	{"notes", "Notes and documents"},
	{"other", "Something else"},
	{"disagreement", "A statement of disagreement with a denied request"},
}

// PartWords says a part code in words ("" for an unknown code).
func PartWords(code string) string {
	for _, p := range AmendmentParts {
		if p.Code == code {
			return p.Words
		}
	}
	return ""
}

// MaxAmendText bounds each text of a request or a decision (characters).
const MaxAmendText = 2000

// ErrAmendment is a request or a decision that cannot be accepted as
// written; its message says what to fix, for the user.
var ErrAmendment = errors.New("correction request")

// amendError is an ErrAmendment with a message for the user.
type amendError struct{ msg string }

func (e amendError) Error() string   { return e.msg }
func (e amendError) Is(t error) bool { return t == ErrAmendment }

// AmendOptions configures [NewAmendments]; all but Now and Rand are
// required.
type AmendOptions struct {
	Tx    AmendUpdater
	Store AmendStore
	Notes Notes
	Log   *audit.Log
	Now   func() time.Time
	Rand  io.Reader
}

// Amendments is the correction requests' use-case. It is safe for
// concurrent use.
type Amendments struct {
	tx    AmendUpdater
	store AmendStore
	notes Notes
	log   *audit.Log
	now   func() time.Time
	rand  io.Reader
}

// NewAmendments validates o. Errors name the field.
func NewAmendments(o AmendOptions) (*Amendments, error) {
	switch {
	case o.Tx == nil:
		return nil, errors.New("privacy: new amendments: AmendOptions.Tx is nil")
	case o.Store == nil:
		return nil, errors.New("privacy: new amendments: AmendOptions.Store is nil")
	case o.Notes == nil:
		return nil, errors.New("privacy: new amendments: AmendOptions.Notes is nil")
	case o.Log == nil:
		return nil, errors.New("privacy: new amendments: AmendOptions.Log is nil")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Amendments{tx: o.Tx, store: o.Store, notes: o.Notes, log: o.Log, now: o.Now, rand: o.Rand}, nil
}

// NewAmendment is a patient's correction request.
type NewAmendment struct {
	Patient   ident.Owner // the requester's own record
	Requester string      // the patient's account id
	Part      string      // a code of AmendmentParts
	Wrong     string      // what is wrong (required)
	Should    string      // what it should say
}

// requestText is the sealed content of a request.
type requestText struct {
	Wrong  string `json:"wrong"`
	Should string `json:"should"`
}

func checkText(s, what string, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return amendError{"Say " + what + "."}
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxAmendText:
		return amendError{"Each answer holds at most 2,000 characters."}
	case strings.IndexFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t' }) >= 0:
		return amendError{"The text holds characters that are not text."}
	}
	return nil
}

// Create stores n, sealed, with its audit event (ActionAmendmentRequest)
// in one transaction. Errors: ErrAmendment (what to fix), or one
// wrapping audit.ErrUnavailable (nothing stored).
func (s *Amendments) Create(ctx context.Context, by Actor, n NewAmendment) (storage.Amendment, error) {
	if PartWords(n.Part) == "" {
		return storage.Amendment{}, amendError{"Choose which part of your record is wrong."}
	}
	if err := errors.Join(checkText(n.Wrong, "what is wrong", true), checkText(n.Should, "what it should say", false)); err != nil {
		return storage.Amendment{}, amendError{strings.SplitN(err.Error(), "\n", 2)[0]}
	}
	id, err := newID(s.rand)
	if err != nil {
		return storage.Amendment{}, err
	}
	body, err := json.Marshal(requestText{Wrong: strings.TrimSpace(n.Wrong), Should: strings.TrimSpace(n.Should)})
	if err != nil {
		return storage.Amendment{}, err
	}
	a := storage.Amendment{ID: id, Patient: string(n.Patient), Requester: n.Requester, Part: n.Part, Created: s.now().UTC(), State: "open"}
	if a.Request, err = s.notes.SealReportNote(ctx, n.Patient, id, record.AmendmentRequest, body); err != nil {
		return storage.Amendment{}, err
	}
	ev := audit.Event{Time: a.Created, Action: audit.ActionAmendmentRequest, Outcome: audit.OutcomeSuccess, Agent: by.Agent, Purpose: by.Purpose,
		Patients: []string{a.Patient}, Entities: []string{"Amendment/" + id}, Policies: []string{"part=" + n.Part}, RequestID: by.RequestID, Status: by.Status}
	rec, err := s.seal(ev)
	if err != nil {
		return storage.Amendment{}, err
	}
	err = s.tx.Update(ctx, func(t AmendTx) error {
		if err := t.InsertAmendment(ctx, a); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return storage.Amendment{}, unrecorded(err)
	}
	return a, nil
}

// Opened is a request with its texts opened.
type Opened struct {
	storage.Amendment
	Wrong, Should, Reason string
	// Unreadable says the texts could not be opened (the patient's
	// record may have been erased).
	Unreadable bool
}

// List returns up to limit requests (patient's when patient is not "",
// else everyone's; open ones only when open), newest first, with their
// texts opened after the read is audited (ActionAmendmentRead, each
// request in its patient's compartment). The caller has decided that by
// may read them: the patient's own, the privacy office, a clinician who
// may open the patient's chart. An error wrapping audit.ErrUnavailable
// means the read could not be recorded and nothing is returned.
func (s *Amendments) List(ctx context.Context, by Actor, patient string, open bool, limit int) ([]Opened, error) {
	as, err := s.store.Amendments(ctx, patient, open, limit)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, nil
	}
	ev := audit.Event{Time: s.now().UTC(), Action: audit.ActionAmendmentRead, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, RequestID: by.RequestID, Status: by.Status}
	for _, a := range as {
		ev.Touch("Amendment/"+a.ID, a.Patient)
	}
	rec, err := s.seal(ev)
	if err != nil {
		return nil, err
	}
	if err := s.tx.Update(ctx, func(t AmendTx) error { return t.AppendAudit(ctx, rec) }); err != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	out := make([]Opened, 0, len(as))
	for _, a := range as {
		o := Opened{Amendment: a}
		var rt requestText
		b, err := s.notes.OpenReportNote(ctx, ident.Owner(a.Patient), a.ID, record.AmendmentRequest, a.Request)
		if err == nil {
			err = json.Unmarshal(b, &rt)
		}
		if err != nil {
			o.Unreadable = true
		}
		o.Wrong, o.Should = rt.Wrong, rt.Should
		if len(a.Reason) > 0 {
			if b, err := s.notes.OpenReportNote(ctx, ident.Owner(a.Patient), a.ID, record.AmendmentDecision, a.Reason); err == nil {
				o.Reason = string(b)
			} else {
				o.Unreadable = true
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// Decide accepts or denies request id by by.Agent.User, with reason
// (required for a denial: §164.526(d) asks for its basis), sealed, and
// its audit event (ActionAmendmentDecide) in one transaction. Errors:
// ErrAmendment (what to fix), storage.ErrNotFound, storage.ErrConflict
// (decided meanwhile), or one wrapping audit.ErrUnavailable.
func (s *Amendments) Decide(ctx context.Context, by Actor, id string, accept bool, reason string) error {
	if err := checkText(reason, "why the request is denied", !accept); err != nil {
		return err
	}
	a, err := s.store.Amendment(ctx, id)
	if err != nil {
		return err
	}
	state := "denied"
	if accept {
		state = "accepted"
	}
	var sealed []byte
	if r := strings.TrimSpace(reason); r != "" {
		if sealed, err = s.notes.SealReportNote(ctx, ident.Owner(a.Patient), a.ID, record.AmendmentDecision, []byte(r)); err != nil {
			return err
		}
	}
	now := s.now().UTC()
	ev := audit.Event{Time: now, Action: audit.ActionAmendmentDecide, Outcome: audit.OutcomeSuccess, Agent: by.Agent, Purpose: by.Purpose,
		Patients: []string{a.Patient}, Entities: []string{"Amendment/" + a.ID}, Policies: []string{"decision=" + state}, RequestID: by.RequestID, Status: by.Status}
	rec, err := s.seal(ev)
	if err != nil {
		return err
	}
	return unrecorded(s.tx.Update(ctx, func(t AmendTx) error {
		if err := t.DecideAmendment(ctx, a.ID, state, by.Agent.User, now, sealed); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	}))
}

func (s *Amendments) seal(ev audit.Event) (storage.AuditRecord, error) {
	rec, err := s.log.Seal(ev)
	if err != nil {
		return storage.AuditRecord{}, fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
	}
	return rec, nil
}
