package authn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/storage"
)

// fakeTokens is a hand-written TokenStore: tokens by hash, or an outage.
type fakeTokens struct {
	byHash map[string]storage.APIToken
	err    error
	calls  int
}

func (f *fakeTokens) TokenByHash(_ context.Context, hash []byte) (storage.APIToken, error) {
	f.calls++
	if f.err != nil {
		return storage.APIToken{}, f.err
	}
	t, ok := f.byHash[string(hash)]
	if !ok {
		return storage.APIToken{}, fmt.Errorf("token by hash: %w", storage.ErrNotFound)
	}
	return t, nil
}

func (f *fakeTokens) add(t storage.APIToken) { f.byHash[string(t.Hash)] = t }

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNewTokenFormat(t *testing.T) {
	seen := map[string]bool{}
	ids := map[string]bool{}
	for range 64 {
		secret, tok, err := authn.NewToken("ci", []string{"system"}, now)
		if err != nil {
			t.Fatal(err)
		}
		s := secret.Reveal()
		if !strings.HasPrefix(s, authn.TokenPrefix) || authn.TokenPrefix != "pvt_" {
			t.Fatalf("secret %q does not start with pvt_", s)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, authn.TokenPrefix))
		if err != nil {
			t.Fatalf("secret body is not unpadded base64url: %v", err)
		}
		if len(raw) != 32 {
			t.Fatalf("secret carries %d bits, want 256", 8*len(raw))
		}
		if seen[s] || ids[tok.ID] {
			t.Fatalf("NewToken repeated a secret or id")
		}
		seen[s], ids[tok.ID] = true, true
		if !bytes.Equal(tok.Hash, authn.HashToken(s)) {
			t.Errorf("stored hash is not HashToken(secret)")
		}
		if strings.Contains(tok.ID, strings.TrimPrefix(s, authn.TokenPrefix)[:8]) {
			t.Errorf("token id %q is derived from the secret", tok.ID)
		}
		if tok.Name != "ci" || len(tok.Roles) != 1 || tok.Roles[0] != "system" || !tok.Created.Equal(now) || tok.Revoked {
			t.Errorf("token record: %+v", tok)
		}
	}
}

func TestHashToken(t *testing.T) {
	tests := []struct {
		name   string
		secret string
	}{
		{"empty", ""},
		{"typical", "pvt_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sha256.Sum256([]byte(tt.secret))
			got := authn.HashToken(tt.secret)
			if !bytes.Equal(got, want[:]) {
				t.Fatalf("HashToken(%q) = %x, want SHA-256 %x", tt.secret, got, want)
			}
		})
	}
	if bytes.Equal(authn.HashToken("pvt_a"), authn.HashToken("pvt_b")) {
		t.Fatal("different secrets hash alike")
	}
}

func TestBearer(t *testing.T) {
	store := &fakeTokens{byHash: map[string]storage.APIToken{}}
	valid, vtok, err := authn.NewToken("importer", []string{"system"}, now)
	if err != nil {
		t.Fatal(err)
	}
	store.add(vtok)
	revoked, rtok, err := authn.NewToken("old", []string{"system"}, now)
	if err != nil {
		t.Fatal(err)
	}
	rtok.Revoked = true
	store.add(rtok)
	unknown, _, err := authn.NewToken("never stored", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	// A stored token whose secret is longer than the bound must still be
	// refused: the bound is checked before any lookup.
	long := authn.TokenPrefix + strings.Repeat("a", 253)
	store.add(storage.APIToken{ID: "tok-long", Hash: authn.HashToken(long)})
	// Same for a stored hash of a secret without the prefix.
	noPrefix := "xyz_" + strings.TrimPrefix(valid.Reveal(), authn.TokenPrefix)
	store.add(storage.APIToken{ID: "tok-noprefix", Hash: authn.HashToken(noPrefix)})

	tests := []struct {
		name   string
		header string
		wantID string // "" means ErrUnauthenticated
	}{
		{"valid", "Bearer " + valid.Reveal(), vtok.ID},
		{"valid, scheme case-insensitive", "bearer " + valid.Reveal(), vtok.ID},
		{"missing", "", ""},
		{"scheme only", "Bearer", ""},
		{"wrong scheme", "Basic " + valid.Reveal(), ""},
		{"token without scheme", valid.Reveal(), ""},
		{"too long", "Bearer " + long, ""},
		{"wrong prefix", "Bearer " + noPrefix, ""},
		{"unknown", "Bearer " + unknown.Reveal(), ""},
		{"revoked", "Bearer " + revoked.Reveal(), ""},
		{"truncated", "Bearer " + valid.Reveal()[:20], ""},
	}
	a := authn.NewAuthenticator(store, nil)
	var msgs []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Bearer(t.Context(), tt.header)
			if tt.wantID != "" {
				if err != nil {
					t.Fatalf("Bearer: %v", err)
				}
				if p.ID != tt.wantID || p.Kind != "token" || p.Name != "importer" {
					t.Fatalf("principal: %+v, want token %s", p, tt.wantID)
				}
				return
			}
			if !errors.Is(err, authn.ErrUnauthenticated) {
				t.Fatalf("Bearer: got %v, want ErrUnauthenticated", err)
			}
			if p.ID != "" || p.Kind != "" || len(p.Roles) != 0 {
				t.Errorf("a refused credential returned principal %+v", p)
			}
			if strings.Contains(err.Error(), "pvt_") {
				t.Errorf("error text carries the token: %v", err)
			}
			msgs = append(msgs, err.Error())
		})
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("refusals differ (%q vs %q): the reason must not be observable", m, msgs[0])
		}
	}
}

func TestBearerRejectsLongTokensBeforeLookup(t *testing.T) {
	store := &fakeTokens{byHash: map[string]storage.APIToken{}}
	a := authn.NewAuthenticator(store, nil)
	header := "Bearer " + authn.TokenPrefix + strings.Repeat("x", 1<<20)
	if _, err := a.Bearer(t.Context(), header); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("got %v, want ErrUnauthenticated", err)
	}
	if store.calls != 0 {
		t.Fatalf("a %d-byte token reached the store", len(header))
	}
}

func TestBearerStorageOutage(t *testing.T) {
	outage := fmt.Errorf("token by hash: %w", storage.ErrUnavailable)
	a := authn.NewAuthenticator(&fakeTokens{err: outage}, nil)
	secret, _, err := authn.NewToken("x", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Bearer(t.Context(), "Bearer "+secret.Reveal())
	if err == nil || errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("got %v; an outage must not look like a bad credential (401 would make clients discard a good token)", err)
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("got %v, want the storage error wrapped", err)
	}
	if strings.Contains(err.Error(), secret.Reveal()) {
		t.Errorf("error text carries the secret: %v", err)
	}
}

func TestSecretRedacts(t *testing.T) {
	secret, _, err := authn.NewToken("x", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	raw := secret.Reveal()
	body := strings.TrimPrefix(raw, authn.TokenPrefix)

	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("token created", "secret", secret, slog.Any("any", secret), slog.Group("g", "s", secret))

	tests := []struct {
		name string
		out  string
	}{
		{"%v", fmt.Sprintf("%v", secret)},
		{"%s", fmt.Sprintf("%s", secret)},
		{"Sprint", fmt.Sprint(secret)},
		{"%q", fmt.Sprintf("%q", secret)},
		{"%+v", fmt.Sprintf("%+v", secret)},
		{"%#v", fmt.Sprintf("%#v", secret)},
		{"%v in struct", fmt.Sprintf("%v", struct{ S authn.Secret }{secret})},
		{"slog JSON", logged.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.out, body) || strings.Contains(tt.out, raw) {
				t.Fatalf("secret leaked: %s", tt.out)
			}
			if !strings.Contains(tt.out, "redacted") {
				t.Fatalf("want a visible redaction marker, got %s", tt.out)
			}
		})
	}
}

// TestBearerCacheExpires: a successful lookup is cached for at most a
// second, so revoking a token takes effect within that time; failures
// are never cached.
func TestBearerCacheExpires(t *testing.T) {
	secret, tok, err := authn.NewToken("svc", []string{"system"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeTokens{byHash: map[string]storage.APIToken{string(tok.Hash): tok}}
	now := time.Unix(1000, 0)
	a := authn.NewAuthenticator(store, func() time.Time { return now })
	hdr := "Bearer " + secret.Reveal()
	if _, err := a.Bearer(t.Context(), hdr); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	tok.Revoked = true
	store.byHash[string(tok.Hash)] = tok
	now = now.Add(500 * time.Millisecond)
	if _, err := a.Bearer(t.Context(), hdr); err != nil {
		t.Fatalf("within the cache time: %v", err)
	}
	if store.calls != 1 {
		t.Errorf("store calls = %d, want 1 (cached)", store.calls)
	}
	if h, m := a.TokenCacheStats(); h != 1 || m != 1 {
		t.Errorf("TokenCacheStats = %d hits, %d misses; want 1, 1", h, m)
	}
	now = now.Add(time.Second)
	if _, err := a.Bearer(t.Context(), hdr); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("revoked token after the cache time: %v, want ErrUnauthenticated", err)
	}
	if _, err := a.Bearer(t.Context(), hdr); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("a refused token must not be cached as valid: %v", err)
	}
}
