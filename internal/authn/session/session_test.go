package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
)

// memStore is a hand-written in-memory session.Store.
type memStore struct {
	mu       sync.Mutex
	byHash   map[string]session.Session
	touches  int
	touchErr error
	users    map[string]bool
}

func newMemStore(users ...string) *memStore {
	m := &memStore{byHash: map[string]session.Session{}, users: map[string]bool{}}
	for _, u := range users {
		m.users[u] = true
	}
	return m
}

func (m *memStore) Create(_ context.Context, s session.Session, hash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.users[s.UserID] {
		return fmt.Errorf("create: %w", session.ErrNotFound)
	}
	m.byHash[string(hash)] = s
	return nil
}

func (m *memStore) ByTokenHash(_ context.Context, hash []byte) (session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byHash[string(hash)]
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	return s, nil
}

func (m *memStore) each(fn func(h string, s session.Session)) {
	for h, s := range m.byHash {
		fn(h, s)
	}
}

func (m *memStore) Touch(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.touchErr != nil {
		return m.touchErr
	}
	m.touches++
	m.each(func(h string, s session.Session) {
		if s.ID == id && s.LastSeen.Before(at) {
			s.LastSeen = at
			m.byHash[h] = s
		}
	})
	return nil
}

func (m *memStore) Revoke(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := false
	m.each(func(h string, s session.Session) {
		if s.ID == id {
			s.Revoked, found = true, true
			m.byHash[h] = s
		}
	})
	if !found {
		return session.ErrNotFound
	}
	return nil
}

func (m *memStore) RevokeUser(_ context.Context, user string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	m.each(func(h string, s session.Session) {
		if s.UserID == user && !s.Revoked {
			s.Revoked = true
			m.byHash[h] = s
			n++
		}
	})
	return n, nil
}

func (m *memStore) ListByUser(_ context.Context, user string, limit int) ([]session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []session.Session
	m.each(func(_ string, s session.Session) {
		if s.UserID == user && !s.Revoked && len(out) < limit {
			out = append(out, s)
		}
	})
	return out, nil
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newManager(t *testing.T, store session.Store, now *time.Time) *session.Manager {
	t.Helper()
	m, err := session.NewManager(store, session.Options{Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  session.Options
		field string // "" = accepted
	}{
		{"defaults", session.Options{}, ""},
		{"custom", session.Options{IdleTimeout: 5 * time.Minute, AbsoluteLifetime: time.Hour}, ""},
		{"idle too short", session.Options{IdleTimeout: time.Minute}, "IdleTimeout"},
		{"idle negative", session.Options{IdleTimeout: -time.Hour}, "IdleTimeout"},
		{"idle fractional", session.Options{IdleTimeout: 5*time.Minute + time.Millisecond}, "IdleTimeout"},
		{"absolute below idle", session.Options{IdleTimeout: time.Hour, AbsoluteLifetime: 30 * time.Minute}, "AbsoluteLifetime"},
		{"absolute below default idle", session.Options{AbsoluteLifetime: 10 * time.Minute}, "AbsoluteLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := session.NewManager(newMemStore(), tc.opts)
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("NewManager: %v", err)
			case tc.field != "" && (err == nil || !strings.Contains(err.Error(), "Options."+tc.field)):
				t.Fatalf("NewManager: %v, want an error naming Options.%s", err, tc.field)
			}
		})
	}
	if _, err := session.NewManager(nil, session.Options{}); err == nil {
		t.Error("NewManager accepted a nil store")
	}
}

func TestDefaults(t *testing.T) {
	if session.DefaultIdleTimeout != 15*time.Minute || session.DefaultAbsoluteLifetime != 12*time.Hour {
		t.Errorf("defaults %v / %v, want 15m / 12h (HIPAA automatic logoff, one shift)", session.DefaultIdleTimeout, session.DefaultAbsoluteLifetime)
	}
}

func TestCreateValidate(t *testing.T) {
	now := t0.Add(123456789 * time.Nanosecond)
	store := newMemStore("u1")
	m := newManager(t, store, &now)
	secret, s, err := m.Create(t.Context(), "u1", false, "::ffff:192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Address != "192.0.2.1" {
		t.Errorf("address %q, want the canonical IPv4 form", s.Address)
	}
	if !s.Created.Equal(now.Truncate(time.Microsecond)) || !strings.HasPrefix(s.ID, "ses_") {
		t.Errorf("session %+v", s)
	}
	if _, ok := store.byHash[string(session.HashSecret(secret.Reveal()))]; !ok {
		t.Error("the store did not get the token's SHA-256")
	}
	got, err := m.Validate(t.Context(), secret.Reveal())
	if err != nil || got != s {
		t.Fatalf("Validate = %+v, %v", got, err)
	}
	for _, addr := range []string{"not-an-ip", "192.0.2.1:443", strings.Repeat("1", 100)} {
		if _, _, err := m.Create(t.Context(), "u1", false, addr); err == nil {
			t.Errorf("Create accepted address %q", addr)
		}
	}
	if _, _, err := m.Create(t.Context(), "nobody", false, ""); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Create for an unknown user: %v", err)
	}
}

func TestValidateFailsClosed(t *testing.T) {
	now := t0
	store := newMemStore("u1")
	m := newManager(t, store, &now)
	secret, _, err := m.Create(t.Context(), "u1", true, "")
	if err != nil {
		t.Fatal(err)
	}
	outage := errors.New("database down")
	store.touchErr = outage
	now = now.Add(2 * time.Minute)
	if _, err := m.Validate(t.Context(), secret.Reveal()); !errors.Is(err, outage) || errors.Is(err, session.ErrInvalidSession) {
		t.Fatalf("Validate when activity cannot be recorded: %v, want the storage error", err)
	}
}

func TestTouchAtMostOncePerMinute(t *testing.T) {
	now := t0
	store := newMemStore("u1")
	m := newManager(t, store, &now)
	secret, _, _ := m.Create(t.Context(), "u1", true, "")
	for range 600 { // ten minutes of a request every second
		now = now.Add(time.Second)
		if _, err := m.Validate(t.Context(), secret.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if store.touches > 10 {
		t.Errorf("%d LastSeen writes in ten minutes, want at most 10", store.touches)
	}
}

func TestSecretRedacts(t *testing.T) {
	now := t0
	m := newManager(t, newMemStore("u1"), &now)
	secret, _, err := m.Create(t.Context(), "u1", true, "")
	if err != nil {
		t.Fatal(err)
	}
	raw := secret.Reveal()
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("login", "token", secret)
	js, _ := json.Marshal(struct{ S session.Secret }{secret})
	for name, out := range map[string]string{
		"slog": buf.String(), "%v": fmt.Sprintf("%v", secret), "%s": fmt.Sprintf("%s", secret),
		"%#v": fmt.Sprintf("%#v", secret), "json": string(js),
	} {
		if strings.Contains(out, raw[len(session.Prefix):]) {
			t.Errorf("%s output %q contains the token", name, out)
		}
	}
}

func TestCSRF(t *testing.T) {
	now := t0
	m := newManager(t, newMemStore("u1"), &now)
	a, _, _ := m.Create(t.Context(), "u1", true, "")
	b, _, _ := m.Create(t.Context(), "u1", true, "")
	ta, tb := session.CSRFToken(a.Reveal()), session.CSRFToken(b.Reveal())
	if ta == tb {
		t.Fatal("two sessions share a CSRF token")
	}
	if ta != session.CSRFToken(a.Reveal()) {
		t.Fatal("CSRFToken is not deterministic")
	}
	if strings.Contains(ta, a.Reveal()[len(session.Prefix):]) {
		t.Fatal("the CSRF token contains the session token")
	}
	if string(session.HashSecret(a.Reveal())) == ta {
		t.Fatal("the CSRF token is the stored hash")
	}
	for _, tc := range []struct {
		name          string
		secret, token string
		want          bool
	}{
		{"match", a.Reveal(), ta, true},
		{"other session's token", a.Reveal(), tb, false},
		{"empty token", a.Reveal(), "", false},
		{"truncated", a.Reveal(), ta[:len(ta)-1], false},
		{"malformed secret", "pvs_x", session.CSRFToken("pvs_x"), false},
		{"empty secret", "", session.CSRFToken(""), false},
	} {
		if got := session.CheckCSRF(tc.secret, tc.token); got != tc.want {
			t.Errorf("%s: CheckCSRF = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "pvs_", "pvs_" + strings.Repeat("A", 43), "pvt_" + strings.Repeat("A", 43), "pvs_" + strings.Repeat("=", 43)} {
		f.Add(s)
	}
	now := t0
	store := newMemStore("u1")
	m, err := session.NewManager(store, session.Options{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := m.Validate(context.Background(), s); !errors.Is(err, session.ErrInvalidSession) {
			t.Fatalf("Validate(%q) = %v, want ErrInvalidSession", s, err)
		}
		if session.CheckCSRF(s, session.CSRFToken(s)) && !strings.HasPrefix(s, session.Prefix) {
			t.Fatalf("CheckCSRF accepted a malformed secret %q", s)
		}
	})
}
