// Package index makes the audit log searchable without decrypting it:
// for every event it stores keyed blind-index terms (HMAC under the
// blind-index key, as for FHIR search) of the patients, resources,
// agent, client, action and outcome, and answers queries on them. It
// serves FHIR AuditEvent search for auditors and privacy officers, and
// each patient's view of the events that touched their record.
//
// # How the index follows the log
//
// The index is derived data. A [Sink] follows the integrated log, in
// leaf order, like a SIEM export sink (package export: a durable cursor,
// advanced after the batch is stored), so the append path of every
// request stays as it is and a crash loses nothing: the batch is indexed
// again, and the rows are idempotent. Events are known by their leaf
// index, which is also their AuditEvent id and what an inclusion proof
// names. "phivault serve" keeps it within about a second of
// the log; [Reader] searches what is indexed.
//
// # Security invariants
//
//   - Terms are keyed hashes: the table reveals which events share a
//     patient or an agent, not who they are, without the blind-index key.
//   - Reading the log is itself audited before any entry is returned
//     (fail closed); the caller decides who may read what (auditors and
//     privacy officers everything, a patient only their own record).
package index

import (
	"context"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

// Blinder computes blind-index hashes; *keys.Keyring implements it.
type Blinder interface {
	BlindIndex(input string) ([]byte, error)
}

// Term kinds, the prefix of every indexed value ("audit:" keeps them
// apart from FHIR search terms under the same key).
const (
	KindPatient = "audit:patient|"
	KindEntity  = "audit:entity|"
	KindAgent   = "audit:agent|"
	KindClient  = "audit:client|"
	KindAction  = "audit:action|"
	KindCRUDE   = "audit:crude|" // the FHIR AuditEvent.action code
	KindOutcome = "audit:outcome|"
	KindAll     = "audit:all|" // every event: searches without a filter
)

// Row is one stored term of one event, by the event's leaf index, with
// the event's time (date filters run on the index: the events
// themselves are sealed in entry bundles).
type Row struct {
	Index int64
	Term  []byte
	At    time.Time
}

// Query selects events: all Terms must match (AND); Since and Until
// (zero = open) bound the recorded time, Since inclusive and Until
// exclusive; Before (-1 = none) pages backwards: only leaves with a
// smaller index. Results are newest first, at most Limit.
type Query struct {
	Terms  [][]byte
	Since  time.Time
	Until  time.Time
	Before int64
	Limit  int
}

// Store keeps and searches the terms; the SQL store implements it.
// SearchAudit returns the leaf indexes of the matching events (Terms is
// never empty), newest first.
type Store interface {
	PutAuditTerms(ctx context.Context, rows []Row) error
	SearchAudit(ctx context.Context, q Query) ([]int64, error)
}

// Term returns the blind-index term of value under kind.
func Term(b Blinder, kind, value string) ([]byte, error) {
	return b.BlindIndex(kind + value)
}

// resourceRef drops a version suffix: "Observation/1/_history/2" is
// indexed as "Observation/1", so a search finds every version's events.
func resourceRef(ref string) string {
	if i := strings.Index(ref, "/_history/"); i > 0 {
		return ref[:i]
	}
	return ref
}

// Terms returns the terms of ev, without duplicates.
func Terms(b Blinder, ev audit.Event) ([][]byte, error) {
	var vals []string
	for _, p := range ev.Patients {
		vals = append(vals, KindPatient+p)
	}
	for _, e := range ev.Entities {
		vals = append(vals, KindEntity+resourceRef(e))
	}
	if ev.Agent.User != "" {
		vals = append(vals, KindAgent+ev.Agent.User)
	}
	if ev.Agent.Client != "" {
		vals = append(vals, KindClient+ev.Agent.Client)
	}
	vals = append(vals, KindAction+string(ev.Action), KindCRUDE+audit.ActionCode(ev.Action), KindOutcome+string(ev.Outcome), KindAll)
	seen := make(map[string]bool, len(vals))
	out := make([][]byte, 0, len(vals))
	for _, v := range vals {
		if seen[v] {
			continue
		}
		seen[v] = true
		t, err := b.BlindIndex(v)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
