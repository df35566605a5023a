package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Notes seals and opens the free text of a report with the patient's
// data key (record.Service implements it); part is record.ReportComment
// or record.ReportCloseNote.
type Notes interface {
	SealReportNote(ctx context.Context, owner ident.Owner, id string, part int64, text []byte) ([]byte, error)
	OpenReportNote(ctx context.Context, owner ident.Owner, id string, part int64, sealed []byte) ([]byte, error)
}

// Actor is who acts, as the audit event records it: the agent, the
// purpose of use, the request id, and the status the front end answers
// with when the operation succeeds.
type Actor struct {
	Agent     audit.Agent
	Purpose   string
	RequestID string
	Status    int
}

// Options configures [NewReports]. Tx, Store, Notes and Log are
// required.
type Options struct {
	Tx    Updater
	Store Store
	Notes Notes
	Log   *audit.Log       // seals the audit events
	Now   func() time.Time // default time.Now
	Rand  io.Reader        // report ids; default crypto/rand
}

// Reports is the access reports' use-case: a patient reports one event
// of their access history, the privacy officer lists the open reports
// and closes them with a note. It is safe for concurrent use.
type Reports struct {
	tx    Updater
	store Store
	notes Notes
	log   *audit.Log
	now   func() time.Time
	rand  io.Reader
}

// NewReports validates o and returns the access reports' service.
// Errors name the Options field.
func NewReports(o Options) (*Reports, error) {
	switch {
	case o.Tx == nil:
		return nil, errors.New("privacy: new reports: Options.Tx is nil")
	case o.Store == nil:
		return nil, errors.New("privacy: new reports: Options.Store is nil")
	case o.Notes == nil:
		return nil, errors.New("privacy: new reports: Options.Notes is nil")
	case o.Log == nil:
		return nil, errors.New("privacy: new reports: Options.Log is nil")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Reports{tx: o.Tx, store: o.Store, notes: o.Notes, log: o.Log, now: o.Now, rand: o.Rand}, nil
}

// NewReport is a patient's report of one event of their access history.
type NewReport struct {
	Patient  ident.Owner // "Patient/<id>": the reporter's own record
	Leaf     int64       // the reported event's leaf index (its log position)
	Reporter string      // the patient's account id
	Comment  string      // "" for none; its length is the caller's check
}

// Create stores n as an open report with its audit event
// (ActionAccessReport: the patient, the event and the report), in one
// transaction, and returns the report as stored. The comment is sealed
// with the patient's key first. An error wrapping audit.ErrUnavailable
// means the event could not be recorded and nothing was stored.
func (s *Reports) Create(ctx context.Context, by Actor, n NewReport) (storage.AccessReport, error) {
	id, err := s.newID()
	if err != nil {
		return storage.AccessReport{}, err
	}
	rep := storage.AccessReport{ID: id, Patient: string(n.Patient), Leaf: n.Leaf, Reporter: n.Reporter, Created: s.now().UTC()}
	if n.Comment != "" {
		if rep.Comment, err = s.notes.SealReportNote(ctx, n.Patient, id, record.ReportComment, []byte(n.Comment)); err != nil {
			return storage.AccessReport{}, err
		}
	}
	ev := audit.Event{Time: rep.Created, Action: audit.ActionAccessReport, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Patients: []string{string(n.Patient)}, Entities: []string{"AuditEvent/" + strconv.FormatInt(n.Leaf, 10), "AccessReport/" + id},
		RequestID: by.RequestID, Status: by.Status}
	rec, err := s.seal(ev)
	if err != nil {
		return storage.AccessReport{}, err
	}
	err = s.tx.Update(ctx, func(t Tx) error {
		if err := t.InsertAccessReport(ctx, rep); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return storage.AccessReport{}, unrecorded(err)
	}
	return rep, nil
}

// Listed is an open report as the privacy officer reads it: its comment
// opened.
type Listed struct {
	storage.AccessReport
	// Text is the opened comment ("" for none); Unreadable says the
	// comment could not be opened (the patient's record may have been
	// erased).
	Text       string
	Unreadable bool
}

// Open returns up to limit open reports, oldest first, with their
// comments opened. The read is audited (ActionAccessReportRead, each
// report in its patient's compartment) before any comment is opened; an
// error wrapping audit.ErrUnavailable means it could not be, and
// nothing is returned.
func (s *Reports) Open(ctx context.Context, by Actor, limit int) ([]Listed, error) {
	reps, err := s.store.OpenAccessReports(ctx, limit)
	if err != nil {
		return nil, err
	}
	ev := audit.Event{Time: s.now().UTC(), Action: audit.ActionAccessReportRead, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, RequestID: by.RequestID, Status: by.Status}
	for _, rep := range reps {
		// Each report is its patient's: each patient's view of this
		// event names only their own reports.
		ev.Touch("AccessReport/"+rep.ID, rep.Patient)
	}
	rec, err := s.seal(ev)
	if err != nil {
		return nil, err
	}
	if err := s.tx.Update(ctx, func(t Tx) error { return t.AppendAudit(ctx, rec) }); err != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	// The comments are opened only after the read is recorded.
	out := make([]Listed, 0, len(reps))
	for _, rep := range reps {
		l := Listed{AccessReport: rep}
		if len(rep.Comment) > 0 {
			txt, err := s.notes.OpenReportNote(ctx, ident.Owner(rep.Patient), rep.ID, record.ReportComment, rep.Comment)
			if err != nil {
				l.Unreadable = true
			} else {
				l.Text = string(txt)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// Report returns report id (its sealed texts unopened), or an error
// wrapping storage.ErrNotFound.
func (s *Reports) Report(ctx context.Context, id string) (storage.AccessReport, error) {
	return s.store.AccessReport(ctx, id)
}

// Close closes rep (as [Reports.Report] returned it) by the acting
// account (by.Agent.User), with the officer's note ("" for none; its
// length is the caller's check) sealed with the patient's key, and its
// audit event (ActionAccessReportClose: the patient, the report and the
// reported event), in one transaction. It returns an error wrapping
// storage.ErrConflict if the report was closed meanwhile and
// storage.ErrNotFound if it is gone (nothing is recorded then), and one
// wrapping audit.ErrUnavailable if the event could not be recorded
// (nothing was closed).
func (s *Reports) Close(ctx context.Context, by Actor, rep storage.AccessReport, note string) error {
	var sealed []byte
	if note != "" {
		var err error
		if sealed, err = s.notes.SealReportNote(ctx, ident.Owner(rep.Patient), rep.ID, record.ReportCloseNote, []byte(note)); err != nil {
			return err
		}
	}
	now := s.now().UTC()
	ev := audit.Event{Time: now, Action: audit.ActionAccessReportClose, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Patients: []string{rep.Patient}, Entities: []string{"AccessReport/" + rep.ID, "AuditEvent/" + strconv.FormatInt(rep.Leaf, 10)},
		RequestID: by.RequestID, Status: by.Status}
	rec, err := s.seal(ev)
	if err != nil {
		return err
	}
	err = s.tx.Update(ctx, func(t Tx) error {
		if err := t.CloseAccessReport(ctx, rep.ID, by.Agent.User, now, sealed); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
	return unrecorded(err)
}

// seal seals ev; a failure is the audit log's (audit.ErrUnavailable).
func (s *Reports) seal(ev audit.Event) (storage.AuditRecord, error) {
	rec, err := s.log.Seal(ev)
	if err != nil {
		return storage.AuditRecord{}, fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
	}
	return rec, nil
}

// unrecorded marks an unavailable store's failure of a change's
// transaction as the audit log's too: the change and its event were
// written together, so neither was.
func unrecorded(err error) error {
	if err != nil && errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, audit.ErrUnavailable) {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return err
}

// newID draws a report id: 128 random bits, hex.
func (s *Reports) newID() (string, error) { return newID(s.rand) }

// newID draws an id from rd: 128 random bits, hex.
func newID(rd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
