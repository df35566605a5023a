package app

import (
	"context"
	"sync"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
)

// LogEvents integrates what is pending, verifies the whole audit log and
// calls fn with every event it holds (tests read what the log reveals).
func LogEvents(ctx context.Context, a *App, fn func(ev []byte)) error {
	if _, err := a.Transparency().Integrate(ctx); err != nil {
		return err
	}
	v, err := merkle.NewVerifier(a.tlog.VerifierKey())
	if err != nil {
		return err
	}
	pinned, err := a.Transparency().Kept()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	_, err = merkle.Verify(ctx, merkle.VerifyOptions{
		Store: a.tlog.Source(), Opener: a.Log, Verifier: v, Origin: a.Config.Audit.LogName, Pinned: pinned,
		Leaf: func(_ int64, leaf []byte, v1 bool) error {
			_, ev, err := audit.LeafEvent(leaf, v1)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			fn(ev)
			return nil
		},
	})
	return err
}
