package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

// LoginStores is one fresh, migrated database seen through the stores
// login uses. The opener registers every Close with t.Cleanup.
type LoginStores struct {
	Store    storage.Store // for the audit log
	Users    UserStore
	Sessions session.Store
	Logins   login.Store
	// Tx is the store's unit of work seen through login's transaction
	// (ADR 0024).
	Tx login.Updater
	// Prune removes dead sessions and idle failed-login counters as of
	// now, returning how many of each it removed.
	Prune func(ctx context.Context, now time.Time) (sessions, failures int64, err error)
}

// RunLogin runs the login store conformance suite (lockout state, TOTP
// credentials, recovery codes, the atomic login commit, and passkeys
// when the store is a login.PasskeyStore), each case on a database of
// its own.
func RunLogin(t *testing.T, open func(t *testing.T) LoginStores) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s LoginStores)
	}{
		{"LoginState", testLoginState},
		{"TOTPCredential", testTOTPCredential},
		{"CommitTOTPStep", testCommitTOTP},
		{"CommitRecoveryAndEnrol", testCommitRecovery},
		{"RevokeOwnSession", testRevokeOwnSession},
		{"ChallengeSingleUse", testChallengeSingleUse},
		{"Prune", testPrune},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
	for _, c := range passkeyCases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			p, ok := s.Logins.(login.PasskeyStore)
			if !ok {
				t.Skip("the login store is not a login.PasskeyStore")
			}
			c.fn(t, s, p)
		})
	}
}

func auditCount(t *testing.T, s storage.Store) int {
	t.Helper()
	n := 0
	if err := s.ScanAudit(t.Context(), 0, func(int64, storage.AuditRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func rec(body string) storage.AuditRecord {
	return storage.AuditRecord{Time: time.Now().UTC(), Body: []byte(body)}
}

func testLoginState(t *testing.T, s LoginStores) {
	ctx := t.Context()
	key := bytes.Repeat([]byte{7}, 32)
	if st, err := s.Logins.LoginState(ctx, key); err != nil || st != (password.AccountState{}) {
		t.Fatalf("LoginState of a new key = %+v, %v", st, err)
	}
	locked := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	err := login.UpdateLoginState(ctx, s.Tx, key, func(cur password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
		return password.AccountState{Failures: cur.Failures + 5, LockedUntil: locked}, []storage.AuditRecord{rec("a"), rec("b")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Logins.LoginState(ctx, key)
	if err != nil || st.Failures != 5 || !st.LockedUntil.Equal(locked) {
		t.Fatalf("LoginState = %+v, %v", st, err)
	}
	if n := auditCount(t, s.Store); n != 2 {
		t.Fatalf("%d audit records, want 2", n)
	}
	boom := errors.New("boom")
	err = login.UpdateLoginState(ctx, s.Tx, key, func(password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
		return password.AccountState{Failures: 99}, []storage.AuditRecord{rec("c")}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateLoginState with a failing fn: %v", err)
	}
	if st, _ := s.Logins.LoginState(ctx, key); st.Failures != 5 || auditCount(t, s.Store) != 2 {
		t.Fatalf("a failed update changed state (%+v) or the audit log", st)
	}
	err = login.UpdateLoginState(ctx, s.Tx, key, func(password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
		return password.AccountState{}, nil, nil
	})
	if st, _ := s.Logins.LoginState(ctx, key); err != nil || st != (password.AccountState{}) {
		t.Fatalf("reset: %+v, %v", st, err)
	}
	if _, err := s.Logins.LoginState(ctx, nil); err == nil {
		t.Error("LoginState accepted an empty key")
	}
}

func testTOTPCredential(t *testing.T, s LoginStores) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "totp.user"))
	if _, err := s.Logins.TOTP(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("TOTP before enrolment: %v", err)
	}
	if err := login.PutTOTP(ctx, s.Tx, "usr_nobody", []byte("x"), rec("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("PutTOTP for an unknown user: %v", err)
	}
	for _, sealed := range []string{"first", "second"} {
		if err := login.PutTOTP(ctx, s.Tx, u.ID, []byte(sealed), rec("enrol")); err != nil {
			t.Fatal(err)
		}
		c, err := s.Logins.TOTP(ctx, u.ID)
		if err != nil || string(c.Sealed) != sealed || c.LastStep != 0 {
			t.Fatalf("TOTP = %q %d, %v", c.Sealed, c.LastStep, err)
		}
	}
	if n := auditCount(t, s.Store); n != 2 {
		t.Fatalf("%d audit records, want 2", n)
	}
	if _, err := s.Users.SetMFA(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := login.PutTOTP(ctx, s.Tx, u.ID, []byte("third"), rec("x")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("PutTOTP for an enrolled user: %v, want ErrConflict", err)
	}
}

// commitSession returns a session of u and its token hash.
func commitSession(u string, n byte) (session.Session, []byte) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return session.Session{ID: "ses_" + string('a'+rune(n)), UserID: u, Created: now, LastSeen: now,
		ExpiresAbsolute: now.Add(time.Hour), IdleTimeout: 15 * time.Minute, MFA: true}, bytes.Repeat([]byte{n}, 32)
}

func wantSession(t *testing.T, s LoginStores, hash []byte, want bool) {
	t.Helper()
	_, err := s.Sessions.ByTokenHash(t.Context(), hash)
	if got := err == nil; got != want {
		t.Fatalf("session stored = %v (%v), want %v", got, err, want)
	}
}

func testCommitTOTP(t *testing.T, s LoginStores) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "step.user"))
	if err := login.PutTOTP(ctx, s.Tx, u.ID, []byte("sealed"), rec("enrol")); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{1}, 32)
	if err := login.UpdateLoginState(ctx, s.Tx, key, func(password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
		return password.AccountState{Failures: 2}, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	sess, hash := commitSession(u.ID, 1)
	c := login.Commit{UserID: u.ID, LoginKey: key, TOTP: &login.StepChange{From: 0, To: 100}, Session: sess, TokenHash: hash,
		Audit: []storage.AuditRecord{rec("verify"), rec("login")}}
	if err := login.ApplyCommit(ctx, s.Tx, c); err != nil {
		t.Fatal(err)
	}
	wantSession(t, s, hash, true)
	if cr, _ := s.Logins.TOTP(ctx, u.ID); cr.LastStep != 100 {
		t.Fatalf("last step %d, want 100", cr.LastStep)
	}
	if st, _ := s.Logins.LoginState(ctx, key); st != (password.AccountState{}) {
		t.Fatalf("login state not reset: %+v", st)
	}
	before := auditCount(t, s.Store)
	// The same step again (a concurrent request that read last_step 0):
	// nothing of the commit may land.
	sess2, hash2 := commitSession(u.ID, 2)
	c2 := login.Commit{UserID: u.ID, TOTP: &login.StepChange{From: 0, To: 100}, Session: sess2, TokenHash: hash2, Audit: []storage.AuditRecord{rec("x")}}
	if err := login.ApplyCommit(ctx, s.Tx, c2); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale step commit: %v, want ErrConflict", err)
	}
	wantSession(t, s, hash2, false)
	if auditCount(t, s.Store) != before {
		t.Fatal("a refused commit appended audit records")
	}
}

func testCommitRecovery(t *testing.T, s LoginStores) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "rec.user"))
	hashes := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)}
	sess, th := commitSession(u.ID, 1)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Enrol: true, RecoveryHashes: hashes, Session: sess, TokenHash: th}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Users.ByID(ctx, u.ID); !got.MFAEnrolled {
		t.Fatal("Enrol did not mark the user enrolled")
	}
	sess2, th2 := commitSession(u.ID, 2)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Enrol: true, Session: sess2, TokenHash: th2}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second enrolment: %v, want ErrConflict", err)
	}
	got, err := s.Logins.RecoveryHashes(ctx, u.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("RecoveryHashes = %d, %v", len(got), err)
	}
	sess3, th3 := commitSession(u.ID, 3)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, UseRecovery: hashes[1], Session: sess3, TokenHash: th3}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Logins.RecoveryHashes(ctx, u.ID); len(got) != 2 || bytes.Equal(got[0], hashes[1]) || bytes.Equal(got[1], hashes[1]) {
		t.Fatalf("used code still stored: %x", got)
	}
	sess4, th4 := commitSession(u.ID, 4)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, UseRecovery: hashes[1], Session: sess4, TokenHash: th4}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("used recovery code again: %v, want ErrConflict", err)
	}
	wantSession(t, s, th4, false)
}

func testRevokeOwnSession(t *testing.T, s LoginStores) {
	ctx := context.Background()
	a := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "owner.a"))
	b := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "owner.b"))
	sess, th := commitSession(a.ID, 1)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: a.ID, Session: sess, TokenHash: th}); err != nil {
		t.Fatal(err)
	}
	if err := login.RevokeSession(ctx, s.Tx, b.ID, sess.ID, rec("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("revoking another user's session: %v, want ErrNotFound", err)
	}
	n := auditCount(t, s.Store)
	if err := login.RevokeSession(ctx, s.Tx, a.ID, sess.ID, rec("revoke")); err != nil {
		t.Fatal(err)
	}
	if auditCount(t, s.Store) != n+1 {
		t.Fatal("revocation not audited")
	}
	if got, _ := s.Sessions.ByTokenHash(ctx, th); !got.Revoked {
		t.Fatal("session not revoked")
	}
	if err := login.RevokeSession(ctx, s.Tx, a.ID, sess.ID, rec("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("revoking twice: %v, want ErrNotFound", err)
	}
}

// Pruning removes sessions a month past their absolute expiry and
// failed-login counters idle for a month past their backoff; it keeps
// live sessions, recent failures and locks until reset.
func testPrune(t *testing.T, s LoginStores) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "prune.user"))
	sess, hash := commitSession(u.ID, 1)
	if err := s.Sessions.Create(ctx, sess, hash); err != nil {
		t.Fatal(err)
	}
	set := func(key byte, st password.AccountState) {
		t.Helper()
		err := login.UpdateLoginState(ctx, s.Tx, bytes.Repeat([]byte{key}, 32), func(password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
			return st, nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	set(1, password.AccountState{Failures: 2})                                                               // below the free failures: no lock
	set(2, password.AccountState{Failures: 3, LockedUntil: now.Add(time.Minute)})                            // recent failures
	set(3, password.AccountState{Failures: 100, LockedUntil: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}) // locked until reset

	// Today: nothing goes.
	ns, nf, err := s.Prune(ctx, now)
	if err != nil || ns != 0 || nf != 0 {
		t.Fatalf("prune now: %d sessions, %d counters, %v; want 0, 0", ns, nf, err)
	}
	wantSession(t, s, hash, true)
	// Two months on: the session and both idle counters go; the lock
	// until reset stays.
	ns, nf, err = s.Prune(ctx, now.Add(60*24*time.Hour))
	if err != nil || ns != 1 || nf != 2 {
		t.Fatalf("prune in two months: %d sessions, %d counters, %v; want 1, 2", ns, nf, err)
	}
	wantSession(t, s, hash, false)
	if st, err := s.Logins.LoginState(ctx, bytes.Repeat([]byte{3}, 32)); err != nil || st.Failures != 100 {
		t.Fatalf("the lock until reset was pruned: %+v, %v", st, err)
	}
}
