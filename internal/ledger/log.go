package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// entry is one commitment to a resource, at its place in the log.
type entry struct {
	pos     int64 // leaf index; pending records follow the integrated leaves
	kind    audit.CommitKind
	version int64
	owner   ident.Owner
	deleted bool
	v, i    []byte
	scheme  int // audit.Commit.Scheme: how v and i were keyed
}

// logPart is what one reading of the log found.
type logPart struct {
	byRes    map[string][]entry      // "Type/id" -> entries, in no particular order
	erasures map[ident.Owner][]int64 // owner -> positions of its erasures
	starts   []start
	baseline int64 // position of the first CommitBaselineDone; -1 for none
	commits  int64
	bad      []Problem // malformed ledger data in events
}

type start struct {
	pos   int64
	time  time.Time
	check []byte
}

func newPart() *logPart {
	return &logPart{byRes: map[string][]entry{}, erasures: map[ident.Owner][]int64{}, baseline: -1}
}

// Log gathers the ledger commitments of the audit log: the integrated
// leaves (fed by [Log.Leaf], typically from merkle.Verify, which checks
// them against the signed tree) and then the tail (leaves integrated
// since, and the records not yet integrated) read by [Log.ReadTail]. It
// is safe for concurrent use.
type Log struct {
	mu         sync.Mutex
	integrated *logPart // leaves below size: final
	size       int64    // integrated leaves read
	pending    *logPart // records not yet integrated at the last ReadTail: replaced by the next
}

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{integrated: newPart(), pending: newPart()} }

// Leaf records the commitments of integrated leaf index. It may be
// called concurrently, in any order, for every leaf below some size n
// (each exactly once); then call SetSize(n) before ReadTail.
func (l *Log) Leaf(index int64, leaf []byte, v1 bool) error {
	_, ev, err := audit.LeafEvent(leaf, v1)
	if err != nil {
		return fmt.Errorf("leaf %d: %w", index, err)
	}
	if !audit.MayCarryLedger(ev) {
		return nil
	}
	// Decoded outside the lock: Leaf runs on every verification worker.
	p := newPart()
	p.add(index, fmt.Sprintf("leaf %d", index), ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.integrated.merge(p)
	return nil
}

// SetSize says that Leaf saw every integrated leaf below n.
func (l *Log) SetSize(n int64) {
	l.mu.Lock()
	l.size = n
	l.mu.Unlock()
}

// Size is the number of integrated leaves read.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// LogKey opens entry bundles and pending records; *audit.Log implements
// it.
type LogKey interface {
	OpenBundle(n int64, width int, sealed []byte) (leaves [][]byte, v1 []bool, err error)
	OpenLeaf(body []byte) (leaf []byte, legacy bool, err error)
}

// errStop ends a bundle scan early.
var errStop = errors.New("stop")

// ReadTail reads the leaves integrated at or beyond Size, then the
// records not yet integrated (replacing those of the previous ReadTail,
// which may have been integrated since), rereading while an integrator
// moves records into bundles meanwhile, so that each event counts once.
// Leaves read here are not checked against the tree: "audit verify"
// does that.
func (l *Log) ReadTail(ctx context.Context, src audit.Source, key LogKey) error {
	l.mu.Lock()
	size := l.size
	l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		integrated := newPart()
		err := src.ScanBundles(ctx, size/audit.BundleWidth, 1<<62, func(b storage.Bundle) error {
			first := b.N * audit.BundleWidth
			if first > size {
				return fmt.Errorf("reading the audit log: entry bundle %d is missing", size/audit.BundleWidth)
			}
			leaves, v1, err := key.OpenBundle(b.N, b.Width, b.Sealed)
			if err != nil {
				return fmt.Errorf("reading the audit log: entry bundle %d: %w", b.N, err)
			}
			for i := size - first; i < int64(len(leaves)); i++ {
				_, ev, err := audit.LeafEvent(leaves[i], v1 != nil && v1[i])
				if err != nil {
					return fmt.Errorf("reading the audit log: leaf %d: %w", size, err)
				}
				if audit.MayCarryLedger(ev) {
					integrated.add(size, fmt.Sprintf("leaf %d", size), ev)
				}
				size++
			}
			return nil
		})
		if err != nil {
			return err
		}
		pending := newPart()
		k := int64(0)
		err = src.ScanPending(ctx, func(lf storage.LogLeaf) error {
			leaf, legacy, err := key.OpenLeaf(lf.Body)
			if err != nil {
				// A record that does not open is named by "audit verify".
				return fmt.Errorf("reading the audit log: record %d does not open with the log key", lf.Seq)
			}
			_, ev, err := audit.LeafEvent(leaf, legacy)
			if err != nil {
				return fmt.Errorf("reading the audit log: record %d: %w", lf.Seq, err)
			}
			if audit.MayCarryLedger(ev) {
				pending.add(size+k, fmt.Sprintf("audit record %d", lf.Seq), ev)
			}
			k++
			return nil
		})
		if err != nil {
			return err
		}
		// Records integrated while the pending ones were read would be
		// missed: read again from where the bundles ended.
		grew := false
		err = src.ScanBundles(ctx, size/audit.BundleWidth, 1<<62, func(b storage.Bundle) error {
			if b.N*audit.BundleWidth+int64(b.Width) > size {
				grew = true
			}
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		l.mu.Lock()
		l.integrated.merge(integrated)
		l.size = size
		l.pending = pending
		l.mu.Unlock()
		if !grew || attempt >= 16 {
			return nil
		}
	}
}

// add records the ledger content of event bytes ev at pos.
func (p *logPart) add(pos int64, where string, ev []byte) {
	var e struct {
		Time     time.Time      `json:"time"`
		Action   audit.Action   `json:"action"`
		Outcome  audit.Outcome  `json:"outcome"`
		Patients []string       `json:"patients"`
		Ledger   []audit.Commit `json:"ledger"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		p.bad = append(p.bad, Problem{Ref: where, Kind: KindLog, Detail: "the event does not decode: " + err.Error()})
		return
	}
	if len(e.Ledger) == 0 {
		// An erasure recorded before ledger v1.
		if e.Action == audit.ActionErase && e.Outcome == audit.OutcomeSuccess && len(e.Patients) == 1 {
			o := ident.Owner(e.Patients[0])
			p.erasures[o] = append(p.erasures[o], pos)
		}
		return
	}
	for _, c := range e.Ledger {
		p.commits++
		switch c.Kind {
		case audit.CommitErase:
			o := ident.Owner(c.Ref)
			p.erasures[o] = append(p.erasures[o], pos)
		case audit.CommitStart:
			p.starts = append(p.starts, start{pos: pos, time: e.Time, check: c.Version})
		case audit.CommitBaselineDone:
			if p.baseline < 0 || pos < p.baseline {
				p.baseline = pos
			}
		case audit.CommitPut, audit.CommitBaseline, audit.CommitRewrite, audit.CommitIndex:
			key, v, ok := splitRef(c.Ref)
			if !ok {
				p.bad = append(p.bad, Problem{Ref: where, Kind: KindLog, Detail: "a ledger commitment names no version"})
				continue
			}
			if c.Scheme != 0 && (c.Scheme != audit.CommitSchemeOwner || c.Owner == "") {
				p.bad = append(p.bad, Problem{Ref: where, Kind: KindLog, Detail: fmt.Sprintf("a ledger commitment of unknown scheme %d (or without owner)", c.Scheme)})
				continue
			}
			p.byRes[key] = append(p.byRes[key], entry{pos: pos, kind: c.Kind, version: v, owner: ident.Owner(c.Owner), deleted: c.Deleted, v: c.Version, i: c.Index, scheme: c.Scheme})
		default:
			p.bad = append(p.bad, Problem{Ref: where, Kind: KindLog, Detail: fmt.Sprintf("unknown ledger commitment kind %q", c.Kind)})
		}
	}
}

// merge adds q's findings to p.
func (p *logPart) merge(q *logPart) {
	for k, es := range q.byRes {
		p.byRes[k] = append(p.byRes[k], es...)
	}
	for o, ps := range q.erasures {
		p.erasures[o] = append(p.erasures[o], ps...)
	}
	p.starts = append(p.starts, q.starts...)
	if q.baseline >= 0 && (p.baseline < 0 || q.baseline < p.baseline) {
		p.baseline = q.baseline
	}
	p.commits += q.commits
	p.bad = append(p.bad, q.bad...)
}

// splitRef splits "Type/id/_history/v" into "Type/id" and v.
func splitRef(ref string) (key string, version int64, ok bool) {
	key, vs, ok := strings.Cut(ref, "/_history/")
	if !ok || strings.Count(key, "/") != 1 {
		return "", 0, false
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || v < 1 {
		return "", 0, false
	}
	return key, v, true
}

// view is a read-only snapshot of the log for the check: integrated and
// pending parts together.
type view struct {
	parts    [2]*logPart
	starts   []start // by position
	baseline int64
	erasures map[ident.Owner][]int64 // sorted
}

// snapshot returns the current view. The entries slices it returns are
// shared: callers must not modify them.
func (l *Log) snapshot() *view {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := &view{parts: [2]*logPart{l.integrated, l.pending}, baseline: -1, erasures: map[ident.Owner][]int64{}}
	for _, p := range v.parts {
		v.starts = append(v.starts, p.starts...)
		if p.baseline >= 0 && (v.baseline < 0 || p.baseline < v.baseline) {
			v.baseline = p.baseline
		}
		for o, ps := range p.erasures {
			v.erasures[o] = append(v.erasures[o], ps...)
		}
	}
	slices.SortFunc(v.starts, func(a, b start) int { return int(a.pos - b.pos) })
	for _, ps := range v.erasures {
		slices.Sort(ps)
	}
	return v
}

// entries returns the commitments to key, in log order.
func (v *view) entries(key string) []entry {
	var out []entry
	for _, p := range v.parts {
		out = append(out, p.byRes[key]...)
	}
	slices.SortStableFunc(out, func(a, b entry) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		return 0
	})
	return out
}

// keys returns every resource the log commits to.
func (v *view) keys() map[string]bool {
	out := map[string]bool{}
	for _, p := range v.parts {
		for k := range p.byRes {
			out[k] = true
		}
	}
	return out
}

// erasedBetween reports the first erasure of owner at a position in
// (after, before), or -1.
func (v *view) erasedBetween(owner ident.Owner, after, before int64) int64 {
	ps := v.erasures[owner]
	i, _ := slices.BinarySearch(ps, after+1)
	if i < len(ps) && ps[i] < before {
		return ps[i]
	}
	return -1
}

func (v *view) bad() []Problem {
	var out []Problem
	for _, p := range v.parts {
		out = append(out, p.bad...)
	}
	return out
}

func (v *view) commits() int64 {
	var n int64
	for _, p := range v.parts {
		n += p.commits
	}
	return n
}
