package storagetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/storage"
)

// testChallengeSingleUse: a login challenge starts at most one session
// (a replayed challenge is a second login), also when several commits race with it, as two
// processes of a fleet would.
func testChallengeSingleUse(t *testing.T, s LoginStores) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "challenge.once"))
	ch := &login.CeremonyUse{Key: bytes.Repeat([]byte{0xc1}, 32), Expires: time.Now().Add(5 * time.Minute)}
	sess, th := commitSession(u.ID, 1)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Challenge: ch, Session: sess, TokenHash: th, Audit: []storage.AuditRecord{rec("login")}}); err != nil {
		t.Fatal(err)
	}
	wantSession(t, s, th, true)
	before := auditCount(t, s.Store)
	sess, th = commitSession(u.ID, 2)
	err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Challenge: ch, Session: sess, TokenHash: th, Audit: []storage.AuditRecord{rec("login")}})
	if !errors.Is(err, login.ErrInvalidChallenge) || !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second session from one challenge: %v, want ErrInvalidChallenge and ErrConflict", err)
	}
	wantSession(t, s, th, false)
	if n := auditCount(t, s.Store); n != before {
		t.Errorf("a refused commit appended %d audit records", n-before)
	}

	// Racing commits of one fresh challenge: exactly one session.
	race := &login.CeremonyUse{Key: bytes.Repeat([]byte{0xc2}, 32), Expires: time.Now().Add(5 * time.Minute)}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sess, th := commitSession(u.ID, byte(10+i))
			errs[i] = login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Challenge: race, Session: sess, TokenHash: th})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, login.ErrInvalidChallenge):
		default:
			t.Errorf("racing commit: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d sessions from one challenge under concurrency, want 1", ok)
	}

	// Expired markers are pruned (their sealed challenges no longer open).
	old := &login.CeremonyUse{Key: bytes.Repeat([]byte{0xc3}, 32), Expires: time.Now().Add(-time.Hour)}
	for i := range 2 {
		sess, th := commitSession(u.ID, byte(30+i))
		if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Challenge: old, Session: sess, TokenHash: th}); err != nil {
			t.Fatalf("expired marker not pruned: %v", err)
		}
	}
}
