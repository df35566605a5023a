package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/storage"
)

// MaxNote bounds a note or a reason, in bytes (STYLE rule 24): a
// paragraph or two, like a break-the-glass note.
const MaxNote = 4000

// checkText refuses an empty, oversized or non-UTF-8 text.
func checkText(what, t string) error {
	switch {
	case strings.TrimSpace(t) == "":
		return fmt.Errorf("%w: the %s is empty", ErrInvalid, what)
	case len(t) > MaxNote:
		return fmt.Errorf("%w: the %s is longer than %d bytes", ErrInvalid, what, MaxNote)
	case !utf8.ValidString(t):
		return fmt.Errorf("%w: the %s is not UTF-8 text", ErrInvalid, what)
	}
	return nil
}

// SetDisposition sets alert id's status (storage.AlertConfirmed,
// AlertFalsePositive, AlertNeedsInterview or AlertOpen to reopen) with
// its reason, kept as a sealed note; the reason is required for a false
// positive. The change, the note and the audit event
// (ActionMonitorDisposition) are one transaction.
func (s *Service) SetDisposition(ctx context.Context, by Actor, id, status, reason string) error {
	x := accessOf(by)
	if x == none {
		return s.refuse(ctx, by, audit.ActionMonitorDisposition, "MonitorAlert/"+id)
	}
	if !validStatus(status) {
		return fmt.Errorf("%w: unknown status", ErrInvalid)
	}
	if reason != "" || status == storage.AlertFalsePositive {
		if err := checkText("reason", reason); err != nil {
			return err
		}
	}
	row, err := s.row(ctx, x, by, audit.ActionMonitorDisposition, id)
	if err != nil {
		return err
	}
	if _, err := s.notOwn(ctx, by, audit.ActionMonitorDisposition, row); err != nil {
		return err
	}
	now := s.now().UTC()
	ev := audit.Event{Time: now, Action: audit.ActionMonitorDisposition, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Entities: []string{"MonitorAlert/" + id}, Policies: []string{"status=" + status},
		RequestID: by.RequestID, Status: by.Status}
	var note *storage.MonitorNote
	if reason != "" {
		n, err := s.sealNote(ctx, by, id, reason)
		if err != nil {
			return err
		}
		note = &n
		ev.Entities = append(ev.Entities, "MonitorNote/"+n.ID)
	}
	return s.record(ctx, func(t storage.MonitorTx) error {
		if err := t.SetMonitorAlertStatus(ctx, id, status, now); err != nil {
			return err
		}
		if note != nil {
			return t.InsertMonitorNote(ctx, *note)
		}
		return nil
	}, ev)
}

// notOwn opens row's alert and refuses (audited, ErrOwnAlert) an actor
// it is about: nobody decides, suppresses or takes an alert on
// themselves. An alert that cannot be opened cannot be checked, and is
// refused with the opening's error.
func (s *Service) notOwn(ctx context.Context, by Actor, action audit.Action, row storage.MonitorAlert) (monitor.Alert, error) {
	a, err := s.openAlert(ctx, row)
	if err != nil {
		return a, fmt.Errorf("opening alert %s: %w", row.ID, err)
	}
	own, err := s.about(ctx, by.Agent.User, a)
	if err != nil {
		return a, err
	}
	if own {
		return a, s.refuseOwn(ctx, by, action, row.ID)
	}
	return a, nil
}

// Assign sets alert id's assignee (an account id; "" unassigns), audited
// (ActionMonitorAssign). Nobody takes an alert about themselves
// (ErrOwnAlert, audited), nor is an alert given to the account it is
// about (ErrInvalid).
func (s *Service) Assign(ctx context.Context, by Actor, id, assignee string) error {
	x := accessOf(by)
	if x == none {
		return s.refuse(ctx, by, audit.ActionMonitorAssign, "MonitorAlert/"+id)
	}
	if len(assignee) > 128 || !utf8.ValidString(assignee) {
		return fmt.Errorf("%w: the assignee is not an account id", ErrInvalid)
	}
	row, err := s.row(ctx, x, by, audit.ActionMonitorAssign, id)
	if err != nil {
		return err
	}
	if assignee != "" {
		a, err := s.openAlert(ctx, row)
		if err != nil {
			return fmt.Errorf("opening alert %s: %w", id, err)
		}
		own, err := s.about(ctx, assignee, a)
		switch {
		case err != nil:
			return err
		case own && assignee == by.Agent.User:
			return s.refuseOwn(ctx, by, audit.ActionMonitorAssign, id)
		case own:
			return fmt.Errorf("%w: the alert is about that account; choose another officer", ErrInvalid)
		}
	}
	now := s.now().UTC()
	ev := audit.Event{Time: now, Action: audit.ActionMonitorAssign, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Entities: []string{"MonitorAlert/" + id}, Policies: []string{"assignee=" + assignee},
		RequestID: by.RequestID, Status: by.Status}
	return s.record(ctx, func(t storage.MonitorTx) error {
		return t.SetMonitorAlertAssignee(ctx, id, assignee, now)
	}, ev)
}

// AddNote adds a sealed note to alert id and returns the note's id,
// audited (ActionMonitorNote).
func (s *Service) AddNote(ctx context.Context, by Actor, id, text string) (string, error) {
	x := accessOf(by)
	if x == none {
		return "", s.refuse(ctx, by, audit.ActionMonitorNote, "MonitorAlert/"+id)
	}
	if err := checkText("note", text); err != nil {
		return "", err
	}
	if _, err := s.row(ctx, x, by, audit.ActionMonitorNote, id); err != nil {
		return "", err
	}
	n, err := s.sealNote(ctx, by, id, text)
	if err != nil {
		return "", err
	}
	ev := audit.Event{Time: n.Created, Action: audit.ActionMonitorNote, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Entities: []string{"MonitorAlert/" + id, "MonitorNote/" + n.ID},
		RequestID: by.RequestID, Status: by.Status}
	err = s.record(ctx, func(t storage.MonitorTx) error { return t.InsertMonitorNote(ctx, n) }, ev)
	if err != nil {
		return "", err
	}
	return n.ID, nil
}

func (s *Service) sealNote(ctx context.Context, by Actor, alert, text string) (storage.MonitorNote, error) {
	id, err := s.newID()
	if err != nil {
		return storage.MonitorNote{}, err
	}
	body, err := s.seal.Seal(ctx, kindNote, id, 1, []byte(text))
	if err != nil {
		return storage.MonitorNote{}, fmt.Errorf("sealing a note: %w", err)
	}
	return storage.MonitorNote{ID: id, Alert: alert, Author: authorOf(by), Created: s.now().UTC(), Body: body}, nil
}

// Scope is what a suppression rule keeps of the alert it comes from:
// its user, one of its patients, its category. At least one is set.
type Scope struct {
	User     bool
	Patient  string // one of the alert's patients, or ""
	Category bool
}

// rule is a suppression rule as sealed: the scope in the clear and the
// reason.
type rule struct {
	User     string `json:"user,omitempty"`
	Patient  string `json:"patient,omitempty"`
	Category string `json:"category,omitempty"`
	Reason   string `json:"reason"`
}

// Suppress turns the false positive alert id into a suppression rule of
// scope: later alerts of its source matching it are stored suppressed.
// The alert is marked a false positive with reason if it was not. The
// rule, the disposition, the reason (a sealed note) and the audit event
// (ActionMonitorSuppress, plus ActionMonitorDisposition when the status
// changes) are one transaction. It returns the rule's id.
//
// A rule never reaches further than its author may triage: a security
// administrator's rule always keeps the alert's category (an attack),
// whatever scope asked. Nobody suppresses an alert about themselves
// (ErrOwnAlert, audited).
func (s *Service) Suppress(ctx context.Context, by Actor, id string, scope Scope, reason string) (string, error) {
	x := accessOf(by)
	if x == none {
		return "", s.refuse(ctx, by, audit.ActionMonitorSuppress, "MonitorAlert/"+id)
	}
	if err := checkText("reason", reason); err != nil {
		return "", err
	}
	if !scope.User && scope.Patient == "" && !scope.Category {
		return "", fmt.Errorf("%w: a suppression rule needs a user, a patient or a category", ErrInvalid)
	}
	row, err := s.row(ctx, x, by, audit.ActionMonitorSuppress, id)
	if err != nil {
		return "", err
	}
	a, err := s.notOwn(ctx, by, audit.ActionMonitorSuppress, row)
	if err != nil {
		return "", err
	}
	if x != all {
		// Limited to the categories the author may see: the alert's own.
		scope.Category = true
	}
	rid, err := s.newID()
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	r := storage.MonitorSuppression{ID: rid, Source: row.Source, Author: authorOf(by), Created: now, Alert: id}
	body := rule{Reason: reason}
	var parts []string
	if scope.User {
		if a.User == "" {
			return "", fmt.Errorf("%w: the alert names no user", ErrInvalid)
		}
		if r.User, err = s.macOf(macUser, row.Source, a.User); err != nil {
			return "", err
		}
		body.User = a.User
		parts = append(parts, "user")
	}
	if scope.Patient != "" {
		found := false
		for _, p := range a.Patients {
			found = found || p == scope.Patient
		}
		if !found {
			return "", fmt.Errorf("%w: the patient is not one of the alert's", ErrInvalid)
		}
		if r.Patient, err = s.macOf(macPatient, row.Source, scope.Patient); err != nil {
			return "", err
		}
		body.Patient = scope.Patient
		parts = append(parts, "patient")
	}
	if scope.Category {
		r.Category, body.Category = row.Category, row.Category
		parts = append(parts, "category")
	}
	js, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	if r.Body, err = s.seal.Seal(ctx, kindSuppression, rid, 1, js); err != nil {
		return "", fmt.Errorf("sealing a suppression rule: %w", err)
	}
	note, err := s.sealNote(ctx, by, id, reason)
	if err != nil {
		return "", err
	}
	evs := []audit.Event{{Time: now, Action: audit.ActionMonitorSuppress, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Entities: []string{"MonitorSuppression/" + rid, "MonitorAlert/" + id, "MonitorNote/" + note.ID},
		Policies: []string{"scope=" + strings.Join(parts, ","), "category=" + row.Category}, RequestID: by.RequestID, Status: by.Status}}
	if row.Status != storage.AlertFalsePositive {
		evs = append(evs, audit.Event{Time: now, Action: audit.ActionMonitorDisposition, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
			Purpose: by.Purpose, Entities: []string{"MonitorAlert/" + id}, Policies: []string{"status=" + storage.AlertFalsePositive},
			RequestID: by.RequestID, Status: by.Status})
	}
	err = s.record(ctx, func(t storage.MonitorTx) error {
		if err := t.InsertMonitorSuppression(ctx, r); err != nil {
			return err
		}
		if err := t.InsertMonitorNote(ctx, note); err != nil {
			return err
		}
		if row.Status != storage.AlertFalsePositive {
			return t.SetMonitorAlertStatus(ctx, id, storage.AlertFalsePositive, now)
		}
		return nil
	}, evs...)
	if err != nil {
		return "", err
	}
	return rid, nil
}

// authorOf is the account recorded as the author of a change: the user,
// else the client ("cli" offline).
func authorOf(by Actor) string {
	if by.Agent.User != "" {
		return by.Agent.User
	}
	return by.Agent.Client
}
