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

// Leaves reads integrated leaves from the log's entry bundles;
// *merkle.Reader implements it.
type Leaves interface {
	Size(ctx context.Context) (int64, error)
	Leaves(ctx context.Context, indexes []int64, fn func(index int64, leaf []byte, v1 bool) error) error
}

// Sealer seals the audit event of each read of the log; *audit.Log
// implements it.
type Sealer interface {
	Seal(ev audit.Event) (storage.AuditRecord, error)
}

// Recorder makes an audit record durable before the read is answered;
// *audit.Batcher implements it.
type Recorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// Reader searches the indexed log and audits every read of it.
type Reader struct {
	store  Store
	blind  Blinder
	leaves Leaves
	log    Sealer
	rec    Recorder
	now    func() time.Time
	sync   func(context.Context) error
}

// NewReader returns a Reader. catchUp, if not nil, is called before
// each search to bring the index up to date with the log.
func NewReader(st Store, b Blinder, leaves Leaves, log Sealer, rec Recorder, now func() time.Time, catchUp func(context.Context) error) *Reader {
	if now == nil {
		now = time.Now
	}
	return &Reader{store: st, blind: b, leaves: leaves, log: log, rec: rec, now: now, sync: catchUp}
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
	if len(q.Terms) == 0 {
		all, err := Term(r.blind, KindAll, "")
		if err != nil {
			return nil, err
		}
		q.Terms = append(q.Terms, all)
	}
	hits, err := r.store.SearchAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("searching the audit log: %w", err)
	}
	out, err := r.open(ctx, hits)
	if err != nil {
		return nil, err
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
	size, err := r.leaves.Size(ctx)
	if err != nil {
		return Entry{}, fmt.Errorf("reading the audit log: %w", err)
	}
	if index < 0 || index >= size {
		return Entry{}, ErrNotFound
	}
	got, err := r.open(ctx, []int64{index})
	if err != nil {
		return Entry{}, err
	}
	if err := r.audit(ctx, c, audit.ActionRead, "", "", got); err != nil {
		return Entry{}, err
	}
	return got[0], nil
}

// open reads and decodes the leaves at indexes, in the order given.
func (r *Reader) open(ctx context.Context, indexes []int64) ([]Entry, error) {
	out := make([]Entry, len(indexes))
	pos := make(map[int64][]int, len(indexes))
	for i, x := range indexes {
		pos[x] = append(pos[x], i)
	}
	got := 0
	err := r.leaves.Leaves(ctx, indexes, func(index int64, leaf []byte, v1 bool) error {
		_, b, err := audit.LeafEvent(leaf, v1)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", index, err)
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decoding leaf %d: %w", index, err)
		}
		for _, i := range pos[index] {
			out[i] = Entry{Index: index, Event: ev, Leaf: leaf}
			got++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	if got != len(indexes) {
		// The index names a leaf the log does not hold: the derived
		// index is damaged; answer nothing rather than empty entries.
		return nil, fmt.Errorf("reading the audit log: %d of %d indexed events are not in the log", len(indexes)-got, len(indexes))
	}
	return out, nil
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

// Denied records a refused read or search of the log (action: what
// was refused, audit.ActionRead or audit.ActionSearch; query names what
// was asked, never a value). An error means it could not be recorded.
func (r *Reader) Denied(ctx context.Context, c Caller, action audit.Action, query string) error {
	ev := audit.Event{
		Time: r.now().UTC(), Action: action, Outcome: audit.OutcomeDenied, Agent: c.Agent,
		Purpose: c.Purpose, Query: query, RequestID: c.RequestID, Status: 403,
	}
	return r.record(ctx, ev)
}
