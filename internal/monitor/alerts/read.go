package alerts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/storage"
)

// Filter selects alerts for [Service.List]. The zero value lists every
// unsuppressed alert, worst first, up to storage.MaxMonitorAlerts.
type Filter struct {
	Since      time.Time // created or changed at or after; zero: any
	Status     string    // "" any
	Source     string    // "" any
	MinScore   float64
	Suppressed bool // include suppressed alerts
	Limit      int
}

// Alert is a stored alert as the privacy officer reads it.
type Alert struct {
	ID         string
	Status     string
	Assignee   string
	Suppressed string // the rule's id, "" if none
	Created    time.Time
	Updated    time.Time
	monitor.Alert
	// Unreadable says the body could not be opened (the organisation key
	// is unavailable or the row was tampered with): only the clear
	// columns are set.
	Unreadable bool
}

// Note is an opened triage note.
type Note struct {
	ID      string
	Author  string
	Created time.Time
	Text    string
}

// Detail is one alert with its notes.
type Detail struct {
	Alert
	Notes []Note
}

// List returns the alerts matching f by score, worst first. A security
// administrator gets the attack categories only. The read is audited
// (ActionMonitorAlertRead naming each alert) before any body is opened.
func (s *Service) List(ctx context.Context, by Actor, f Filter) ([]Alert, error) {
	x := accessOf(by)
	if x == none {
		return nil, s.refuse(ctx, by, audit.ActionMonitorAlertRead)
	}
	if f.Status != "" && !validStatus(f.Status) {
		return nil, fmt.Errorf("%w: unknown status", ErrInvalid)
	}
	rows, err := s.store.MonitorAlerts(ctx, storage.MonitorFilter{Since: f.Since, Status: f.Status, Source: f.Source,
		MinScore: f.MinScore, Suppressed: f.Suppressed, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	kept := rows[:0]
	for _, r := range rows {
		if x.may(r.Category) {
			kept = append(kept, r)
		}
	}
	ev := s.readEvent(by)
	for _, r := range kept {
		ev.Entities = append(ev.Entities, "MonitorAlert/"+r.ID)
	}
	if err := s.record(ctx, nil, ev); err != nil {
		return nil, err
	}
	out := make([]Alert, 0, len(kept))
	for _, r := range kept {
		out = append(out, s.opened(ctx, r))
	}
	return out, nil
}

// Get returns alert id with its notes, the read audited first. It
// returns ErrNotFound for no such alert (and for one the actor may not
// see, after auditing the refusal: a security administrator cannot
// probe for privacy alerts).
func (s *Service) Get(ctx context.Context, by Actor, id string) (Detail, error) {
	x := accessOf(by)
	if x == none {
		return Detail{}, s.refuse(ctx, by, audit.ActionMonitorAlertRead, "MonitorAlert/"+id)
	}
	row, err := s.row(ctx, x, by, audit.ActionMonitorAlertRead, id)
	if err != nil {
		return Detail{}, err
	}
	notes, err := s.store.MonitorNotes(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	ev := s.readEvent(by)
	ev.Entities = []string{"MonitorAlert/" + id}
	for _, n := range notes {
		ev.Entities = append(ev.Entities, "MonitorNote/"+n.ID)
	}
	if err := s.record(ctx, nil, ev); err != nil {
		return Detail{}, err
	}
	d := Detail{Alert: s.opened(ctx, row)}
	for _, n := range notes {
		txt, err := s.seal.Open(ctx, kindNote, n.ID, 1, n.Body)
		t := string(txt)
		if err != nil {
			t = ""
		}
		d.Notes = append(d.Notes, Note{ID: n.ID, Author: n.Author, Created: n.Created, Text: t})
	}
	return d, nil
}

// row reads alert id for an actor with access x; a missing alert or
// one x may not see is ErrNotFound, the latter after auditing the
// refusal of action.
func (s *Service) row(ctx context.Context, x access, by Actor, action audit.Action, id string) (storage.MonitorAlert, error) {
	row, err := s.store.MonitorAlert(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return row, ErrNotFound
	}
	if err != nil {
		return row, err
	}
	if !x.may(row.Category) {
		if err := s.refuse(ctx, by, action, "MonitorAlert/"+id); !errors.Is(err, ErrForbidden) {
			return row, err
		}
		return row, ErrNotFound
	}
	return row, nil
}

func (s *Service) readEvent(by Actor) audit.Event {
	return audit.Event{Time: s.now().UTC(), Action: audit.ActionMonitorAlertRead, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, RequestID: by.RequestID, Status: by.Status}
}

// opened is row with its body opened.
func (s *Service) opened(ctx context.Context, r storage.MonitorAlert) Alert {
	a := Alert{ID: r.ID, Status: r.Status, Assignee: r.Assignee, Suppressed: r.Suppressed, Created: r.Created, Updated: r.Updated}
	body, err := s.openAlert(ctx, r)
	if err != nil {
		a.Unreadable = true
		a.Alert = monitor.Alert{Source: r.Source, Category: monitor.Category(r.Category), Severity: monitor.Severity(r.Severity),
			Score: r.Score, First: r.First, Last: r.Last}
		return a
	}
	a.Alert = body
	return a
}

// Review is what the privacy office confirmed about one patient's
// record: the accesses a patient sees as under review.
type Review struct {
	// Refs are the accesses kept as evidence ("leaf/<n>", positions in
	// phivault's own audit log).
	Refs []string
	// Spans are the confirmed alerts' users and times: every access of
	// User to the patient from First to Last (inclusive) is covered,
	// evidence kept or not (the evidence is capped).
	Spans []Span
}

// Span is one confirmed alert's reach over a patient's record.
type Span struct {
	// User is the alert's user as the own-log converter names it:
	// "Practitioner/<id>" (an account bound to that Practitioner),
	// "User/<account id>" or "Client/<token id>".
	User        string
	First, Last time.Time
}

// Covers reports whether an access at t by the account with id
// account, bound to fhirUser ("" none), is within one of r's spans.
func (r Review) Covers(account, fhirUser string, t time.Time) bool {
	for _, sp := range r.Spans {
		who := (account != "" && (sp.User == "User/"+account || sp.User == "Client/"+account)) || (fhirUser != "" && sp.User == fhirUser)
		if who && !t.Before(sp.First) && !t.After(sp.Last) {
			return true
		}
	}
	return false
}

// UnderReview returns what confirmed alerts cover of patient's
// ("Patient/<id>") record: the accesses kept as their evidence and,
// for the alerts with a user, the user and the alert's span. Only
// alerts of phivault's own log count. It is not audited here: the
// portal's read of the patient's own access history is.
func (s *Service) UnderReview(ctx context.Context, patient string) (Review, error) {
	var out Review
	m, err := s.macOf(macPatient, SourcePhivault, patient)
	if err != nil {
		return out, err
	}
	rows, err := s.store.MonitorAlertsOfPatient(ctx, m, storage.AlertConfirmed)
	if err != nil {
		return out, err
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Source != SourcePhivault {
			continue
		}
		a, err := s.openAlert(ctx, r)
		if err != nil {
			return Review{}, err
		}
		for _, x := range a.Evidence.Accesses {
			own := x.Patient == patient || (x.Patient == "" && len(a.Patients) == 1 && a.Patients[0] == patient)
			if own && strings.HasPrefix(x.Ref, "leaf/") && !seen[x.Ref] {
				seen[x.Ref] = true
				out.Refs = append(out.Refs, x.Ref)
			}
		}
		if a.User != "" && !a.First.IsZero() && !a.Last.IsZero() {
			out.Spans = append(out.Spans, Span{User: a.User, First: a.First.UTC(), Last: a.Last.UTC()})
		}
	}
	return out, nil
}

func validStatus(s string) bool {
	switch s {
	case storage.AlertOpen, storage.AlertConfirmed, storage.AlertFalsePositive, storage.AlertNeedsInterview:
		return true
	}
	return false
}
