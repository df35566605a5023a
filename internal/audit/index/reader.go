package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// MaxLimit bounds one page of results.
const MaxLimit = 500

// ErrNotFound is returned by [Reader.Get] for a leaf index not (yet) in
// the log.
var ErrNotFound = errors.New("audit event not found")

// Filter is a search in plain values; empty fields do not filter.
type Filter struct {
	Patient string // "Patient/<id>"
	Entity  string // "Type/<id>"
	Agent   string // user or token id
	Client  string
	Action  audit.Action
	CRUDE   string // C, R, U, D or E
	Outcome audit.Outcome
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Before  int64     // page: only events with a smaller leaf index; 0 = none
	Limit   int       // 1..MaxLimit; 0 = 50
}

// Entry is one event of the log: its leaf index, the event, and the
// leaf itself (salt and canonical event bytes), from which anyone can
// recompute the leaf hash and check an inclusion proof.
type Entry struct {
	Index int64
	Event audit.Event
	Leaf  []byte
}

// Opener decrypts a stored record; *audit.Log implements it.
type Opener interface {
	OpenLeaf(body []byte) (leaf []byte, legacy bool, err error)
	Seal(ev audit.Event) (storage.AuditRecord, error)
}

// Recorder makes an audit record durable before the read is answered;
// *audit.Batcher implements it.
type Recorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// Reader searches the indexed log and audits every read of it.
type Reader struct {
	store Store
	blind Blinder
	log   Opener
	rec   Recorder
	now   func() time.Time
	sync  func(context.Context) error
}

// NewReader returns a Reader. catchUp, if not nil, is called before
// each search to bring the index up to date with the log.
func NewReader(st Store, b Blinder, log Opener, rec Recorder, now func() time.Time, catchUp func(context.Context) error) *Reader {
	if now == nil {
		now = time.Now
	}
	return &Reader{store: st, blind: b, log: log, rec: rec, now: now, sync: catchUp}
}

// Caller is who reads the log, for the audit record of the read.
type Caller struct {
	Agent     audit.Agent
	Purpose   string
	RequestID string
}

// Search returns the matching entries, newest first, after recording
// the read (the query's parameter names and every returned position)
// durably. On a recording failure it returns audit.ErrUnavailable and
// no entries.
func (r *Reader) Search(ctx context.Context, c Caller, f Filter) ([]Entry, error) {
	if r.sync != nil {
		if err := r.sync(ctx); err != nil {
			return nil, fmt.Errorf("bringing the audit index up to date: %w", err)
		}
	}
	q := Query{Since: f.Since, Until: f.Until, Before: -1, Limit: f.Limit}
	if f.Before > 0 {
		q.Before = f.Before
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, MaxLimit)
	var names string
	for _, t := range []struct{ kind, val, name string }{
		{KindPatient, f.Patient, "patient"}, {KindEntity, resourceRef(f.Entity), "entity"},
		{KindAgent, f.Agent, "agent"}, {KindClient, f.Client, "client"},
		{KindAction, string(f.Action), "subtype"}, {KindCRUDE, f.CRUDE, "action"}, {KindOutcome, string(f.Outcome), "outcome"},
	} {
		if t.val == "" {
			continue
		}
		term, err := Term(r.blind, t.kind, t.val)
		if err != nil {
			return nil, err
		}
		q.Terms = append(q.Terms, term)
		names += "&" + t.name
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		names += "&date"
	}
	hits, err := r.store.SearchAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("searching the audit log: %w", err)
	}
	out := make([]Entry, 0, len(hits))
	for _, h := range hits {
		e, err := r.open(h.Index, h.Rec)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	query := "AuditEvent"
	if names != "" {
		query += "?" + names[1:]
	}
	if err := r.audit(ctx, c, audit.ActionSearch, query, f.Patient, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the entry at leaf index, after recording the read.
func (r *Reader) Get(ctx context.Context, c Caller, index int64) (Entry, error) {
	rec, err := r.store.AuditByIndex(ctx, index)
	if errors.Is(err, storage.ErrNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("reading the audit log: %w", err)
	}
	e, err := r.open(index, rec)
	if err != nil {
		return Entry{}, err
	}
	if err := r.audit(ctx, c, audit.ActionRead, "", "", []Entry{e}); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func (r *Reader) open(index int64, rec storage.AuditRecord) (Entry, error) {
	leaf, legacy, err := r.log.OpenLeaf(rec.Body)
	if err != nil {
		return Entry{}, fmt.Errorf("leaf %d: %w", index, err)
	}
	b := leaf
	if !legacy {
		if _, b, err = audit.SplitLeaf(leaf); err != nil {
			return Entry{}, fmt.Errorf("leaf %d: %w", index, err)
		}
	}
	var ev audit.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Entry{}, fmt.Errorf("decoding leaf %d: %w", index, err)
	}
	return Entry{Index: index, Event: ev, Leaf: leaf}, nil
}

// audit records the read of the log: the leaves returned as
// "AuditEvent/<index>" entities, and the patient whose record's trail was
// read, so that the patient sees who looked at their access history.
func (r *Reader) audit(ctx context.Context, c Caller, action audit.Action, query, patient string, got []Entry) error {
	ev := audit.Event{
		Time: r.now().UTC(), Action: action, Outcome: audit.OutcomeSuccess, Agent: c.Agent,
		Purpose: c.Purpose, Query: query, RequestID: c.RequestID, Status: 200,
	}
	if patient != "" {
		ev.Patients = []string{patient}
	}
	for _, e := range got {
		ev.Entities = append(ev.Entities, "AuditEvent/"+strconv.FormatInt(e.Index, 10))
	}
	return r.record(ctx, ev)
}

// record seals ev and makes it durable; any failure is
// audit.ErrUnavailable (the caller answers 503 and returns nothing).
func (r *Reader) record(ctx context.Context, ev audit.Event) error {
	rec, err := r.log.Seal(ev)
	if err != nil {
		return fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
	}
	if err := r.rec.Record(ctx, rec); err != nil {
		return fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
	}
	return nil
}

// Denied records a refused read of the log (query names what was
// asked, never a value). An error means it could not be recorded.
func (r *Reader) Denied(ctx context.Context, c Caller, query string) error {
	ev := audit.Event{
		Time: r.now().UTC(), Action: audit.ActionSearch, Outcome: audit.OutcomeDenied, Agent: c.Agent,
		Purpose: c.Purpose, Query: query, RequestID: c.RequestID, Status: 403,
	}
	return r.record(ctx, ev)
}
