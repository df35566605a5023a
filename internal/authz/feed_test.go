package authz

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// memFeed is an in-memory storage.ChangeFeed.
type memFeed struct {
	mu      sync.Mutex
	changes []storage.Change
	err     error
}

// ChangesSince returns every row after cursor, and also the rows of the
// previous poll (as PostgreSQL does while an older transaction runs).
func (f *memFeed) ChangesSince(_ context.Context, cursor int64) ([]storage.Change, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, 0, f.err
	}
	from := max(0, cursor-3)
	if from > int64(len(f.changes)) {
		from = int64(len(f.changes))
	}
	out := append([]storage.Change(nil), f.changes[from:]...)
	if len(out) > storage.MaxChanges {
		out = out[:storage.MaxChanges]
	}
	return out, int64(len(f.changes)), nil
}

func (f *memFeed) PruneChanges(context.Context, time.Duration) (int64, error) { return 0, nil }

func (f *memFeed) add(owner string) {
	f.mu.Lock()
	f.changes = append(f.changes, storage.Change{Seq: int64(len(f.changes) + 1), Owner: owner})
	f.mu.Unlock()
}

var denyConsentP1 = Found{Type: "Consent", ID: "c1", Owner: "Patient/p1", JSON: []byte(`{"resourceType":"Consent","status":"active",` +
	`"scope":{"coding":[{"code":"patient-privacy"}]},"patient":{"reference":"Patient/p1"},"provision":{"type":"deny"}}`)}

// TestFeedKeepsPatientFactsAndDropsChanged (ADR 0043): a patient's facts
// outlive CacheTTL while the change feed is polled, a Consent written by
// another process (a feed row, no write hook here) takes effect at the
// next poll, and facts fall back to CacheTTL when the feed stops.
func TestFeedKeepsPatientFactsAndDropsChanged(t *testing.T) {
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	src := &memSource{res: []Found{careTeamFound}}
	a, p := testAuthorizer(t, src, nil, func() time.Time { return clock })
	feed := &memFeed{}
	w := watcher{a: a, feed: feed, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tgt := Target{Type: "Observation", ID: "o", Owner: "Patient/p1"}
	decide := func(want bool) {
		t.Helper()
		d, err := a.Decide(t.Context(), p, Read, tgt)
		if err != nil || d.Allowed != want {
			t.Fatalf("decision %+v %v, want allowed=%v", d, err, want)
		}
	}
	loads := func() int {
		t.Helper()
		n := src.reads
		if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
			t.Fatal(err)
		}
		return src.reads - n
	}
	w.poll(t.Context())
	decide(true)
	// Past CacheTTL with a healthy feed: the facts are not read again.
	clock = clock.Add(DefaultCacheTTL + time.Second)
	w.poll(t.Context())
	if n := loads(); n != 0 {
		t.Fatalf("facts read again (%d reads) while the feed is healthy", n)
	}
	// Another process stores a denying Consent: the feed names p1; until
	// the next poll the cached facts serve (the bound is one poll).
	src.res = append(src.res, denyConsentP1)
	feed.add("Patient/p1")
	w.poll(t.Context())
	decide(false)
	// The same row seen again at the next poll does not drop the facts again.
	w.poll(t.Context())
	if n := loads(); n != 0 {
		t.Fatalf("a row already applied dropped the facts again (%d reads)", n)
	}
	// The feed fails: past CacheTTL the facts are read again.
	feed.err = errors.New("database unreachable")
	clock = clock.Add(feedStale)
	w.poll(t.Context())
	if n := loads(); n != 0 {
		t.Fatalf("facts younger than CacheTTL read again (%d reads)", n)
	}
	clock = clock.Add(DefaultCacheTTL)
	if n := loads(); n == 0 {
		t.Fatal("facts served past CacheTTL with a stale feed")
	}
	// A full page of changes may hide some: every patient is dropped.
	feed.err = nil
	for range storage.MaxChanges {
		feed.add("Patient/other")
	}
	w.poll(t.Context())
	if n := loads(); n == 0 {
		t.Fatal("facts kept after a full page of changes")
	}
	// Never past LongCacheTTL, even with a healthy feed.
	clock = clock.Add(LongCacheTTL)
	w.poll(t.Context())
	if n := loads(); n == 0 {
		t.Fatal("facts served past LongCacheTTL")
	}
}

// TestFeedDropDuringLoad: facts dropped while they load (a write
// committed after the load read the old state) are used once, not kept.
func TestFeedDropDuringLoad(t *testing.T) {
	src := &racingSource{memSource: memSource{res: []Found{careTeamFound}}}
	a, _ := testAuthorizer(t, &src.memSource, nil, nil)
	a.src = src
	src.during = func() { a.dropPatient("Patient/p1") }
	if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
		t.Fatal(err)
	}
	src.during = nil
	n := src.reads
	if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
		t.Fatal(err)
	}
	if src.reads == n {
		t.Fatal("facts dropped during their load were cached")
	}
	// Loaded undisturbed, they are cached.
	n = src.reads
	if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
		t.Fatal(err)
	}
	if src.reads != n {
		t.Fatal("facts loaded undisturbed were not cached")
	}
}

// racingSource runs during in the middle of a patient's facts load.
type racingSource struct {
	memSource
	during func()
}

func (r *racingSource) OwnedOfType(ctx context.Context, owner, typ string, limit int) ([]Found, error) {
	if r.during != nil {
		r.during()
	}
	return r.memSource.OwnedOfType(ctx, owner, typ, limit)
}

// TestFeedRelatedConsentKeepsShortTTL: a Consent whose data refers to
// other resources depends on more than the feed covers: CacheTTL.
func TestFeedRelatedConsentKeepsShortTTL(t *testing.T) {
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	related := Found{Type: "Consent", ID: "c2", Owner: "Patient/p1", JSON: []byte(`{"resourceType":"Consent","status":"active",` +
		`"scope":{"coding":[{"code":"patient-privacy"}]},"patient":{"reference":"Patient/p1"},` +
		`"provision":{"type":"permit","provision":[{"type":"deny","data":[{"meaning":"related","reference":{"reference":"Encounter/e1"}}]}]}}`)}
	src := &memSource{res: []Found{careTeamFound, related}}
	a, _ := testAuthorizer(t, src, nil, func() time.Time { return clock })
	w := watcher{a: a, feed: &memFeed{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w.poll(t.Context())
	if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(DefaultCacheTTL + time.Second)
	w.poll(t.Context())
	n := src.reads
	if _, err := a.patientFactsOf(t.Context(), "Patient/p1"); err != nil {
		t.Fatal(err)
	}
	if src.reads == n {
		t.Fatal("facts with a related-data Consent outlived CacheTTL")
	}
}

// TestConsentNamingAnotherSpelling: a Consent stored under a patient
// whose patient reference is not understood as that patient fails
// closed (undecidable) instead of being skipped.
func TestConsentNamingAnotherSpelling(t *testing.T) {
	for ref, want := range map[string]bool{
		"Patient/p1": false,
		"https://fhir.example.org/fhir/Patient/p1": false,
		"Patient/p1/_history/3":                    false,
		"Patient/p2":                               true,
		"Group/g1":                                 true,
	} {
		c := Found{Type: "Consent", ID: "c", Owner: "Patient/p1", JSON: []byte(`{"resourceType":"Consent","status":"active",` +
			`"scope":{"coding":[{"code":"patient-privacy"}]},"patient":{"reference":"` + ref + `"},"provision":{"type":"deny"}}`)}
		pf, err := patientFacts("Patient/p1", nil, []Found{c})
		if err != nil {
			t.Fatal(err)
		}
		if pf.Undecidable != want || (!want && len(pf.Consents) != 1) {
			t.Errorf("patient %q: undecidable %v with %d consents, want undecidable %v", ref, pf.Undecidable, len(pf.Consents), want)
		}
	}
}
