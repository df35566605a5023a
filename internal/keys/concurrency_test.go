package keys

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// TestKeyringConcurrent exercises the cache and system keys from many
// goroutines; run with -race.
func TestKeyringConcurrent(t *testing.T) {
	clock := &fakeClock{now: t0}
	k := newKeyring(t, Options{CacheSize: 3, CacheTTL: time.Minute, Clock: clock.Now})
	loadSystemKeys(t, k)
	recs := make([]struct {
		owner ident.Owner
		ct    []byte
	}, 5)
	keyRecs := make(map[ident.Owner]storage.KeyRecord)
	for i := range recs {
		owner := ident.PatientOwner(fmt.Sprintf("p%d", i))
		rec := newDEKRec(t, k, owner)
		keyRecs[owner] = rec
		ct, err := dekOf(t, k, rec).Seal([]byte(owner), ResourceAD{"Patient", "x", 1, owner})
		if err != nil {
			t.Fatal(err)
		}
		recs[i].owner, recs[i].ct = owner, ct
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				r := recs[(g+i)%len(recs)]
				d, err := k.DEK(keyRecs[r.owner])
				if err != nil {
					t.Error(err)
					return
				}
				if pt, err := d.Open(r.ct, ResourceAD{"Patient", "x", 1, r.owner}); err != nil || ident.Owner(pt) != r.owner {
					t.Errorf("Open(%s) = %q, %v", r.owner, pt, err)
					return
				}
				if _, err := k.BlindIndex(r.owner.String()); err != nil {
					t.Error(err)
				}
				switch i % 10 {
				case 0:
					k.Forget(r.owner)
				case 5:
					clock.Advance(10 * time.Second)
				}
			}
		})
	}
	wg.Wait()
}
