package storagetest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
)

// fakeClock is a settable clock for the session Manager.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// manager returns a Manager with default timeouts on a fake clock, and
// one user to own sessions.
func manager(t *testing.T, s IdentityStores) (*session.Manager, *fakeClock, identity.User) {
	t.Helper()
	clock := &fakeClock{t: base}
	m, err := session.NewManager(s.Sessions, session.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m, clock, mustCreate(t, s, newUser(t, "grace", identity.RolePhysician))
}

func mustSession(t *testing.T, m *session.Manager, userID string) (session.Secret, session.Session) {
	t.Helper()
	secret, sess, err := m.Create(t.Context(), userID, true, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	return secret, sess
}

func wantValid(t *testing.T, m *session.Manager, secret session.Secret, when string) session.Session {
	t.Helper()
	s, err := m.Validate(t.Context(), secret.Reveal())
	if err != nil {
		t.Fatalf("%s: Validate: %v, want a valid session", when, err)
	}
	return s
}

func wantInvalid(t *testing.T, m *session.Manager, secret string, when string) {
	t.Helper()
	if _, err := m.Validate(t.Context(), secret); !errors.Is(err, session.ErrInvalidSession) {
		t.Fatalf("%s: Validate: %v, want ErrInvalidSession", when, err)
	}
}

func testSessionValidate(t *testing.T, s IdentityStores) {
	m, _, u := manager(t, s)
	secret, created := mustSession(t, m, u.ID)
	if !strings.HasPrefix(secret.Reveal(), session.Prefix) || len(secret.Reveal()) != len(session.Prefix)+43 {
		t.Errorf("token has the wrong shape (length %d)", len(secret.Reveal()))
	}
	got := wantValid(t, m, secret, "fresh")
	if got != created {
		t.Errorf("Validate = %+v\nwant     %+v", got, created)
	}
	if got.UserID != u.ID || !got.MFA || got.Address != "192.0.2.7" || got.IdleTimeout != session.DefaultIdleTimeout ||
		!got.ExpiresAbsolute.Equal(base.Add(session.DefaultAbsoluteLifetime)) {
		t.Errorf("session fields %+v", got)
	}
	other, _ := mustSession(t, m, u.ID)
	if other == secret {
		t.Fatal("two sessions got the same token")
	}
	raw := secret.Reveal()
	c := byte('A')
	if raw[len(raw)-2] == 'A' {
		c = 'B'
	}
	flipped := raw[:len(raw)-2] + string(c) + raw[len(raw)-1:] // same shape, another token
	for _, bad := range []string{"", "pvs_", flipped, "pvt_" + raw[4:], raw + "A", strings.ToUpper(raw), "pvs_" + strings.Repeat("\x00", 43)} {
		wantInvalid(t, m, bad, fmt.Sprintf("token %.8q", bad))
	}
}

func testSessionUnknownUser(t *testing.T, s IdentityStores) {
	m, _, _ := manager(t, s)
	if _, _, err := m.Create(t.Context(), "usr_nobody", false, ""); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Create for an unknown user: %v, want ErrNotFound", err)
	}
}

func testSessionTouch(t *testing.T, s IdentityStores) {
	m, clock, u := manager(t, s)
	secret, _ := mustSession(t, m, u.ID)
	hash := session.HashSecret(secret.Reveal())
	stored := func() time.Time {
		t.Helper()
		x, err := s.Sessions.ByTokenHash(t.Context(), hash)
		if err != nil {
			t.Fatal(err)
		}
		return x.LastSeen
	}
	clock.Advance(30 * time.Second)
	wantValid(t, m, secret, "after 30s")
	if got := stored(); !got.Equal(base) {
		t.Errorf("LastSeen written after 30s (%v): writes are not bounded to one a minute", got)
	}
	clock.Advance(31 * time.Second)
	got := wantValid(t, m, secret, "after 61s")
	if want := base.Add(61 * time.Second); !got.LastSeen.Equal(want) || !stored().Equal(want) {
		t.Errorf("LastSeen %v, stored %v; want %v", got.LastSeen, stored(), want)
	}
	// Touch never moves LastSeen backwards (a slow concurrent request).
	if err := s.Sessions.Touch(t.Context(), got.ID, base); err != nil {
		t.Fatal(err)
	}
	if !stored().Equal(base.Add(61 * time.Second)) {
		t.Error("Touch moved LastSeen backwards")
	}
}

func testSessionIdle(t *testing.T, s IdentityStores) {
	m, clock, u := manager(t, s)
	secret, _ := mustSession(t, m, u.ID)
	// Activity every 14 minutes keeps it alive well past 15 minutes.
	for i := range 4 {
		clock.Advance(14 * time.Minute)
		wantValid(t, m, secret, fmt.Sprintf("active, step %d", i))
	}
	clock.Advance(session.DefaultIdleTimeout)
	wantInvalid(t, m, secret.Reveal(), "after 15 idle minutes")
	// Activity does not revive an idle-expired session.
	clock.Advance(time.Second)
	wantInvalid(t, m, secret.Reveal(), "after expiry")
}

func testSessionAbsolute(t *testing.T, s IdentityStores) {
	m, clock, u := manager(t, s)
	secret, sess := mustSession(t, m, u.ID)
	for clock.Now().Add(10 * time.Minute).Before(sess.ExpiresAbsolute) {
		clock.Advance(10 * time.Minute)
		wantValid(t, m, secret, "active "+clock.Now().Sub(base).String())
	}
	clock.Advance(sess.ExpiresAbsolute.Sub(clock.Now()))
	wantInvalid(t, m, secret.Reveal(), "at the absolute lifetime, though active")
}

func testSessionRevoke(t *testing.T, s IdentityStores) {
	m, _, u := manager(t, s)
	secret, sess := mustSession(t, m, u.ID)
	keep, _ := mustSession(t, m, u.ID)
	if err := m.Revoke(t.Context(), sess.ID); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, m, secret.Reveal(), "revoked")
	wantValid(t, m, keep, "the other session")
	if err := m.Revoke(t.Context(), sess.ID); err != nil {
		t.Errorf("second Revoke: %v, want nil (idempotent)", err)
	}
	if err := m.Revoke(t.Context(), "ses_unknown"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Revoke of an unknown id: %v, want ErrNotFound", err)
	}
}

func testSessionRevokeAll(t *testing.T, s IdentityStores) {
	m, clock, u := manager(t, s)
	other := mustCreate(t, s, newUser(t, "heidi"))
	var mine []session.Secret
	for range 3 {
		sec, _ := mustSession(t, m, u.ID)
		mine = append(mine, sec)
		clock.Advance(time.Second)
	}
	theirs, theirSess := mustSession(t, m, other.ID)
	if list, err := m.ListForUser(t.Context(), u.ID); err != nil || len(list) != 3 || !list[0].Created.After(list[2].Created) {
		t.Fatalf("ListForUser before: %d sessions, %v; want 3 newest first", len(list), err)
	}
	n, err := m.RevokeAllForUser(t.Context(), u.ID)
	if err != nil || n != 3 {
		t.Fatalf("RevokeAllForUser = %d, %v; want 3", n, err)
	}
	for i, sec := range mine {
		wantInvalid(t, m, sec.Reveal(), fmt.Sprintf("session %d after RevokeAllForUser", i))
	}
	wantValid(t, m, theirs, "another user's session")
	if list, err := m.ListForUser(t.Context(), u.ID); err != nil || len(list) != 0 {
		t.Errorf("ListForUser after: %d sessions, %v; want 0", len(list), err)
	}
	if list, err := m.ListForUser(t.Context(), other.ID); err != nil || len(list) != 1 || list[0].ID != theirSess.ID {
		t.Errorf("ListForUser of the other user: %+v, %v", list, err)
	}
	if n, err := m.RevokeAllForUser(t.Context(), u.ID); err != nil || n != 0 {
		t.Errorf("second RevokeAllForUser = %d, %v; want 0", n, err)
	}
}

// identityTables are every table a session or user write may touch,
// and the older ones, scanned whole by testSessionHashOnly.
var identityTables = []string{
	"users", "sessions", "totp_credentials", "recovery_codes", "webauthn_credentials",
	"api_tokens", "keys", "resources", "resource_versions", "search_index", "audit_events",
}

func testSessionHashOnly(t *testing.T, s IdentityStores) {
	m, clock, u := manager(t, s)
	var secrets []session.Secret
	for range 3 {
		sec, _ := mustSession(t, m, u.ID)
		secrets = append(secrets, sec)
		clock.Advance(2 * time.Minute)
		wantValid(t, m, sec, "before the scan") // a touch writes too
	}
	if err := m.Revoke(t.Context(), wantValid(t, m, secrets[0], "revoking").ID); err != nil {
		t.Fatal(err)
	}
	var needles [][]byte
	for _, sec := range secrets {
		raw := sec.Reveal()
		body := raw[len(session.Prefix):]
		random, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, []byte(raw), []byte(body), random, []byte(session.CSRFToken(raw)))
	}
	hashes := 0
	for _, table := range identityTables {
		rows, err := s.DB.QueryContext(t.Context(), "SELECT * FROM "+table) // constant table names
		if err != nil {
			t.Fatalf("scanning %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				default:
					continue
				}
				for _, n := range needles {
					if bytes.Contains(b, n) {
						t.Errorf("%s.%s holds a session token (or its CSRF token) in clear", table, cols[i])
					}
				}
				for _, sec := range secrets {
					if table == "sessions" && cols[i] == "token_hash" && bytes.Equal(b, session.HashSecret(sec.Reveal())) {
						hashes++
					}
				}
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if hashes != len(secrets) {
		t.Errorf("found %d stored token hashes, want %d: the scan did not see the sessions table", hashes, len(secrets))
	}
}
