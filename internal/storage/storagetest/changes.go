package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// testChanges: the authorization change feed (migration 0032, ADR 0043)
// names the owner of every write of a Patient, Consent or RelatedPerson,
// the previous owner too when a write moves one, and nothing for other
// types; a write that rolls back leaves no row.
func testChanges(t *testing.T, s storage.Store) {
	ctx := t.Context()
	feed, ok := s.(storage.ChangeFeed)
	if !ok {
		t.Fatalf("%T does not implement storage.ChangeFeed", s)
	}
	all := func() []storage.Change {
		t.Helper()
		cs, _, err := feed.ChangesSince(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if i > 0 && c.Seq <= cs[i-1].Seq {
				t.Errorf("changes not in sequence order: %v", cs)
			}
		}
		return cs
	}
	owners := func() []string {
		t.Helper()
		var out []string
		for _, c := range all() {
			out = append(out, c.Owner)
		}
		return out
	}
	if got := owners(); len(got) != 0 {
		t.Fatalf("empty store has changes %v", got)
	}
	put(t, s, ver("Observation", "o1", 1, "Patient/p1", at(0)), tok("code", "a"))
	put(t, s, ver("Encounter", "e1", 1, "Patient/p1", at(0)))
	if got := owners(); len(got) != 0 {
		t.Fatalf("writes of other types left changes %v", got)
	}
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(1)))
	put(t, s, ver("Consent", "c1", 1, "Patient/p1", at(2)))
	put(t, s, ver("RelatedPerson", "r1", 1, "Patient/p2", at(3)))
	// An update that moves the Consent to another patient names both.
	put(t, s, ver("Consent", "c1", 2, "Patient/p2", at(4)))
	put(t, s, storage.Version{Type: "Consent", ID: "c1", Version: 3, Owner: "Patient/p2", LastUpdated: at(5), Deleted: true})
	want := []string{"Patient/p1", "Patient/p1", "Patient/p2", "Patient/p2", "Patient/p1", "Patient/p2"}
	got := owners()
	// The two rows of the moving update may come in either order.
	if len(got) != len(want) || !slices.Equal(got[:3], want[:3]) || !slices.Equal(slices.Sorted(slices.Values(got[3:5])), []string{"Patient/p1", "Patient/p2"}) || got[5] != want[5] {
		t.Fatalf("changes %v, want %v", got, want)
	}
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Patient", "p9", 1, "Patient/p9", at(6)), nil); err != nil {
			return err
		}
		return errAuditFailed
	})
	if err == nil {
		t.Fatal("a failing fn committed")
	}
	if got := owners(); slices.Contains(got, "Patient/p9") {
		t.Fatalf("a rolled-back write left a change: %v", got)
	}
	// Pruning keeps recent rows and removes old ones.
	if n, err := feed.PruneChanges(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("prune of an hour removed %d: %v", n, err)
	}
	time.Sleep(5 * time.Millisecond)
	if n, err := feed.PruneChanges(ctx, time.Millisecond); err != nil || n != int64(len(want)) {
		t.Fatalf("prune of everything removed %d, want %d: %v", n, len(want), err)
	}
	if got := owners(); len(got) != 0 {
		t.Fatalf("after pruning: %v", got)
	}
	if _, _, err := feed.ChangesSince(ctx, -1); err == nil {
		t.Error("a negative cursor was accepted")
	}

	// The cursor: a poll after another sees what committed in between,
	// including a write whose transaction was running at the first poll
	// and commits after it (PostgreSQL commits out of sequence order).
	_, cursor, err := feed.ChangesSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cs, cursor, err := feed.ChangesSince(ctx, cursor)
	if err != nil || len(cs) != 0 {
		t.Fatalf("a poll with nothing new: %v %v", cs, err)
	}
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx storage.Tx) error {
			if err := tx.Put(ctx, ver("Consent", "long", 1, "Patient/long", at(7)), nil); err != nil {
				return err
			}
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	cs, cursor, err = feed.ChangesSince(ctx, cursor)
	if err != nil || len(cs) != 0 {
		t.Fatalf("an uncommitted write is visible: %v %v", cs, err)
	}
	// A later write: on PostgreSQL it commits before the long one and is
	// polled first; on SQLite it waits for the single writer.
	later := make(chan error, 1)
	go func() {
		later <- tryPut(t, s, ver("Patient", "later", 1, "Patient/later", at(8)))
	}()
	var seen []string
	poll := func() {
		t.Helper()
		cs, cursor, err = feed.ChangesSince(ctx, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			seen = append(seen, c.Owner)
		}
	}
	time.Sleep(50 * time.Millisecond)
	poll()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	poll()
	if !slices.Contains(seen, "Patient/long") || !slices.Contains(seen, "Patient/later") {
		t.Fatalf("after the long transaction committed, polls from the cursor saw %v", seen)
	}
}
