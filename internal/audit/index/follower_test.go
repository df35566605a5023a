package index

import (
	"context"
	"testing"
)

// A store without an index has no follower: serve's loop of a nil
// follower returns instead of panicking.
func TestNilFollowerRunReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var f *Follower
	f.Run(ctx)
}
