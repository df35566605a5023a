package lifecycle

import (
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// DestroyedKEKs vouches for missing KEK keys only when the database
// records every one of them destroyed, and never when it cannot read.
func TestDestroyedKEKs(t *testing.T) {
	es := fakeEpochs{retired: []storage.RetiredKEK{
		{KEKID: 1, Epoch: 1, Destroyed: time.Unix(1, 0)},
		{KEKID: 2, Epoch: 1}, // retired, still in the key file
	}}
	gone := DestroyedKEKs(es)
	for _, tc := range []struct {
		ids  []uint32
		want bool
	}{
		{[]uint32{1}, true},
		{[]uint32{1, 2}, false},
		{[]uint32{2}, false},
		{[]uint32{3}, false}, // never retired
	} {
		if got := gone(tc.ids); got != tc.want {
			t.Errorf("ids %v: %v, want %v", tc.ids, got, tc.want)
		}
	}
	es.err = errors.New("database down")
	if DestroyedKEKs(es)([]uint32{1}) {
		t.Error("a failed read vouched for a destroyed key")
	}
}
