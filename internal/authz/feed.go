package authz

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// The change feed (ADR 0043). A patient's facts (its Patient resource
// and Consents) are read on every decision about the patient's data;
// loading them is a read, a decryption and a Consent search. They change
// rarely, but any process may change them (another server of a
// PostgreSQL fleet, a command beside the server), so a cache that only
// hears this process's writes must expire quickly (CacheTTL).
//
// The database appends the owner of every write of a Patient, Consent
// or RelatedPerson to a change feed in the writing transaction itself
// (a trigger). Watch polls the feed from a cursor that misses no row,
// however long its transaction ran (SQLite: the sequence, which is the
// commit order; PostgreSQL: the oldest transaction running at the
// previous poll), and drops the facts of the owners it names. While the
// polls succeed, a patient's facts live up to LongCacheTTL; when the last
// successful poll is older than feedStale (the database is unreachable,
// the poller stopped), every entry falls back to CacheTTL. Staleness is
// thus bounded by one poll for other processes' writes, and is nil for
// this process's own (the write hook drops the entry at commit).

const (
	// FeedInterval is how often Watch polls the change feed.
	FeedInterval = 500 * time.Millisecond

	// LongCacheTTL is how long a patient's facts live while the feed is
	// healthy. The bound only limits the damage of a bug: the feed is
	// what keeps the facts current.
	LongCacheTTL = 10 * time.Minute

	// feedStale is the age of the last successful poll beyond which the
	// long TTL is not used.
	feedStale = 2 * time.Second

	// feedKeep is how long rows stay in the feed before pruning. A row
	// is lost to a server only if its transaction ran longer than this
	// and a prune came between its commit and that server's next poll.
	feedKeep = time.Hour

	// pruneEvery is how often Watch prunes the feed.
	pruneEvery = time.Minute
)

// Watch polls feed every FeedInterval until ctx ends (see the comment
// above). It is meant to run once per process, in the background.
func (a *Authorizer) Watch(ctx context.Context, feed storage.ChangeFeed, log *slog.Logger) {
	w := watcher{a: a, feed: feed, log: log}
	t := time.NewTicker(FeedInterval)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			a.feedAt.Store(0)
			return
		case <-t.C:
		}
	}
}

// watcher is Watch's state, owned by its goroutine.
type watcher struct {
	a        *Authorizer
	feed     storage.ChangeFeed
	log      *slog.Logger
	cursor   int64
	seen     map[int64]bool // the rows of the previous poll, applied
	failing  bool
	lastPrun time.Time
}

func (w *watcher) poll(ctx context.Context) {
	a := w.a
	start := a.now()
	cs, next, err := w.feed.ChangesSince(ctx, w.cursor)
	if err != nil {
		if ctx.Err() == nil && !w.failing {
			w.log.Warn("authorization change feed unreadable: patients' facts are cached for "+a.ttl.String()+" only until it is back", slog.Any("err", err))
		}
		w.failing = true
		return
	}
	if w.failing {
		w.log.Info("authorization change feed readable again")
		w.failing = false
	}
	if len(cs) >= storage.MaxChanges {
		// Some rows were not read: whatever they named is unknown.
		a.pgen.Add(1)
		a.fgen.Add(1)
	}
	// A row comes back while an older transaction runs (PostgreSQL);
	// it was applied when first seen.
	seen := make(map[int64]bool, len(cs))
	changed := false
	for _, c := range cs {
		seen[c.Seq] = true
		if w.seen[c.Seq] {
			continue
		}
		changed = true
		a.dropPatient(c.Owner)
	}
	if changed {
		// The search filters and the restricted list are built from
		// the same resources.
		a.fgen.Add(1)
	}
	w.seen, w.cursor = seen, next
	// Rows committed before start were all visible to this poll.
	a.feedAt.Store(start.UnixNano())
	if start.Sub(w.lastPrun) >= pruneEvery {
		w.lastPrun = start
		if _, err := w.feed.PruneChanges(ctx, feedKeep); err != nil && ctx.Err() == nil {
			w.log.Warn("pruning the authorization change feed", slog.Any("err", err))
		}
	}
}

// dropPatient drops the cached facts of owner, and makes sure a load of
// them that started before this call does not store what it read (the
// load may have read the previous state). An owner that is not a
// patient's drops every patient's facts.
func (a *Authorizer) dropPatient(owner string) {
	if !strings.HasPrefix(owner, ident.PatientPrefix) {
		a.pgen.Add(1)
		return
	}
	a.mu.Lock()
	delete(a.patC, owner)
	a.invSeq++
	if len(a.patInv) >= maxCached {
		// Forgetting which owners were dropped would let a stale load
		// in: drop everything instead.
		clear(a.patInv)
		a.pgen.Add(1)
	}
	a.patInv[owner] = a.invSeq
	a.mu.Unlock()
}

// patientFresh reports whether a patient's cached facts loaded at loaded
// may serve at now.
func (a *Authorizer) patientFresh(e patientEntry, now time.Time) bool {
	age := now.Sub(e.loaded)
	if age < a.ttl {
		return true
	}
	if !e.long || age >= LongCacheTTL {
		return false
	}
	at := a.feedAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < feedStale
}
