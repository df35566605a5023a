package totp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

// counting yields 0, 1, 2, ... so secrets are predictable in tests.
type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

func TestNewSecretFrom(t *testing.T) {
	key, err := NewSecretFrom(&counting{}, "phivault demo", "alice@example.test")
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, SecretBytes)
	(&counting{}).Read(raw)
	if want := b32.EncodeToString(raw); key.Secret() != want {
		t.Fatalf("Secret = %s, want %s", key.Secret(), want)
	}
	if len(key.Secret()) != 32 {
		t.Errorf("secret is %d base32 chars, want 32 (160 bits)", len(key.Secret()))
	}
	u, err := url.Parse(key.URI())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	checks := []struct{ name, got, want string }{
		{"scheme", u.Scheme, "otpauth"},
		{"type", u.Host, "totp"},
		{"label", u.Path, "/phivault demo:alice@example.test"},
		{"secret", q.Get("secret"), key.Secret()},
		{"issuer", q.Get("issuer"), "phivault demo"},
		{"algorithm", q.Get("algorithm"), "SHA1"},
		{"digits", q.Get("digits"), "6"},
		{"period", q.Get("period"), "30"},
		{"issuer accessor", key.Issuer(), "phivault demo"},
		{"account accessor", key.Account(), "alice@example.test"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// Spaces must be %20, not "+": Google Authenticator shows "+" literally.
	if strings.Contains(key.URI(), "+") {
		t.Errorf("URI %q encodes a space as +", key.URI())
	}
	// An enrolled key works with its own codes.
	now := time.Unix(1767225600, 0)
	if _, ok := Verify(key.Secret(), mustCode(t, key.Secret(), now), now, 0); !ok {
		t.Error("a fresh key's own code is refused")
	}
}

func TestNewSecretRandom(t *testing.T) {
	a, err := NewSecret("phivault", "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecret("phivault", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.Secret() == b.Secret() {
		t.Error("two NewSecret calls returned the same secret")
	}
}

func TestNewSecretInvalid(t *testing.T) {
	tests := []struct{ name, issuer, account string }{
		{"empty issuer", "", "alice"},
		{"empty account", "phivault", ""},
		{"colon in issuer", "php:vault", "alice"},
		{"colon in account", "phivault", "a:lice"},
		{"newline", "phivault", "alice\n"},
		{"DEL", "phivault", "alice\x7f"},
		{"too long", "phivault", strings.Repeat("a", maxNameLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSecret(tc.issuer, tc.account); !errors.Is(err, ErrInvalidAccount) {
				t.Errorf("err = %v, want ErrInvalidAccount", err)
			}
		})
	}
}

func TestNewSecretReaderError(t *testing.T) {
	_, err := NewSecretFrom(io.LimitReader(&counting{}, 5), "phivault", "alice")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestKeyRedacts: a Key printed, logged or marshalled shows no secret.
func TestKeyRedacts(t *testing.T) {
	key, err := NewSecret("phivault", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("enrolled", "key", key)
	js, err := json.Marshal(struct{ Key Key }{key})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", key),
		"%+v":  fmt.Sprintf("%+v", key),
		"%#v":  fmt.Sprintf("%#v", key),
		"%s":   fmt.Sprintf("%s", key),
		"slog": logged.String(),
		"json": string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, key.Secret()) || !strings.Contains(out, "redacted") {
			t.Errorf("%s output %q is not redacted", name, out)
		}
	}
}
