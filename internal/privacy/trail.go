package privacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
)

// Trail records the privacy office's reads that no other service
// records: staff lookups by name and the files made from audit events
// (an exported audit search, a patient's accounting of accesses). A
// patient lookup is the record service's audited Patient search, and a
// search of the log is the audit index's; the export is recorded on top
// of the search that read its events, before the file is written. It is
// safe for concurrent use.
type Trail struct {
	tx  Updater
	log *audit.Log
	now func() time.Time
}

// TrailOptions configures [NewTrail]. Tx and Log are required.
type TrailOptions struct {
	Tx  Updater
	Log *audit.Log
	Now func() time.Time // default time.Now
}

// NewTrail validates o and returns the trail. Errors name the field.
func NewTrail(o TrailOptions) (*Trail, error) {
	switch {
	case o.Tx == nil:
		return nil, errors.New("privacy: new trail: TrailOptions.Tx is nil")
	case o.Log == nil:
		return nil, errors.New("privacy: new trail: TrailOptions.Log is nil")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Trail{tx: o.Tx, log: o.Log, now: o.Now}, nil
}

// Staff lookup bounds (STYLE rule 24): how many accounts one lookup
// reads from the directory, and how many it returns.
const (
	maxStaffScan    = 5000
	MaxStaffResults = 50
	// MaxLookupText bounds a name typed into a lookup, in bytes.
	MaxLookupText = 100
)

// ErrLookup is a lookup that cannot run as asked (no text, too long);
// its message is for the user.
var ErrLookup = errors.New("enter a part of a name or username of at most 100 characters")

// Staff returns the accounts (not patients) whose display name or
// username contains every word of name (case-insensitive), at most
// MaxStaffResults, and records the lookup (ActionPeopleLookup: the field
// searched, never its value; the accounts found) before returning them.
// An error wrapping audit.ErrUnavailable means it could not be recorded,
// and nothing is returned; ErrLookup means name cannot be searched.
func (t *Trail) Staff(ctx context.Context, by Actor, dir identity.Directory, name string) ([]identity.User, error) {
	words := strings.Fields(strings.ToLower(name))
	if len(words) == 0 || len(name) > MaxLookupText {
		return nil, ErrLookup
	}
	var found []identity.User
	after := ""
	for scanned := 0; scanned < maxStaffScan && len(found) < MaxStaffResults; {
		page, err := dir.List(ctx, after, identity.MaxPage)
		if err != nil {
			return nil, fmt.Errorf("listing accounts: %w", err)
		}
		for _, u := range page {
			if slices.Contains(u.Roles, identity.RolePatient) {
				continue // a patient is looked up in the record, not here
			}
			hay := strings.ToLower(u.DisplayName + " " + u.Username)
			if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(hay, w) }) && len(found) < MaxStaffResults {
				found = append(found, u)
			}
		}
		scanned += len(page)
		if len(page) < identity.MaxPage {
			break
		}
		after = page[len(page)-1].Username
	}
	ev := audit.Event{Time: t.now().UTC(), Action: audit.ActionPeopleLookup, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Query: "User?name", RequestID: by.RequestID, Status: by.Status}
	for _, u := range found {
		ev.Entities = append(ev.Entities, "User/"+u.ID)
	}
	if err := t.append(ctx, ev); err != nil {
		return nil, err
	}
	return found, nil
}

// Export is a file made from audit events.
type Export struct {
	Format  string   // "csv" or "pdf"
	Query   string   // what was exported: "AuditEvent?patient&date", never a value
	Patient string   // "Patient/<id>" whose trail it is, or ""
	Leaves  []int64  // the events in the file
	Extra   []string // other entities in the file ("Patient/<id>" of a record summary)
}

// Export records that by made a file of e (ActionExport), before the
// file is written. An error wrapping audit.ErrUnavailable means it could
// not be recorded: the caller writes nothing.
func (t *Trail) Export(ctx context.Context, by Actor, e Export) error {
	if e.Format != "csv" && e.Format != "pdf" {
		return fmt.Errorf("privacy: export: unknown format %q", e.Format)
	}
	ev := audit.Event{Time: t.now().UTC(), Action: audit.ActionExport, Outcome: audit.OutcomeSuccess, Agent: by.Agent,
		Purpose: by.Purpose, Query: e.Query, RequestID: by.RequestID, Status: by.Status, Policies: []string{"format=" + e.Format}}
	if e.Patient != "" {
		ev.Patients = []string{e.Patient}
	}
	for _, l := range e.Leaves {
		ev.Entities = append(ev.Entities, fmt.Sprintf("AuditEvent/%d", l))
	}
	ev.Entities = append(ev.Entities, e.Extra...)
	return t.append(ctx, ev)
}

func (t *Trail) append(ctx context.Context, ev audit.Event) error {
	rec, err := t.log.Seal(ev)
	if err != nil {
		return fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
	}
	if err := t.tx.Update(ctx, func(x Tx) error { return x.AppendAudit(ctx, rec) }); err != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return nil
}
