package keys

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

func TestBlindIndex(t *testing.T) {
	k1 := newKeyring(t, Options{})
	if _, err := k1.BlindIndex("x"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("BlindIndex before load: %v, want ErrNoKey", err)
	}
	loadSystemKeys(t, k1)
	k2 := newKeyring(t, Options{})
	loadSystemKeys(t, k2)

	bi := func(k *Keyring, in string) []byte {
		t.Helper()
		out, err := k.BlindIndex(in)
		if err != nil {
			t.Fatalf("BlindIndex(%q): %v", in, err)
		}
		if len(out) != BlindIndexSize {
			t.Fatalf("BlindIndex(%q) has %d bytes, want %d", in, len(out), BlindIndexSize)
		}
		return out
	}
	tests := []struct {
		name      string
		ka, kb    *Keyring
		a, b      string
		wantEqual bool
	}{
		{"same key, same input", k1, k1, "family\x00smith", "family\x00smith", true},
		{"same key, empty input", k1, k1, "", "", true},
		{"same key, other input", k1, k1, "family\x00smith", "family\x00smyth", false},
		{"same key, other parameter", k1, k1, "family\x00smith", "given\x00smith", false},
		{"other key, same input", k1, k2, "family\x00smith", "family\x00smith", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := bi(tt.ka, tt.a), bi(tt.kb, tt.b)
			if bytes.Equal(a, b) != tt.wantEqual {
				t.Fatalf("equal = %v, want %v", !tt.wantEqual, tt.wantEqual)
			}
		})
	}

	// Reloading the same records (after a restart, or a rewrap) keeps
	// every index: the key, not the wrap, decides.
	blind, err := k1.NewSystemKey(SystemBlindIndex, t0)
	if err != nil {
		t.Fatal(err)
	}
	token, err := k1.NewSystemKey(SystemToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := k1.LoadSystemKeys(blind, token); err != nil {
		t.Fatal(err)
	}
	before := bi(k1, "x")
	rb, err := k1.Rewrap(blind)
	if err != nil {
		t.Fatal(err)
	}
	if err := k1.LoadSystemKeys(rb, token); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, bi(k1, "x")) {
		t.Fatal("blind index changed after rewrapping its key")
	}
}

func TestLoadSystemKeysRefuses(t *testing.T) {
	k := newKeyring(t, Options{})
	blind, err := k.NewSystemKey(SystemBlindIndex, t0)
	if err != nil {
		t.Fatal(err)
	}
	token, err := k.NewSystemKey(SystemToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	// A blind-index wrap relabelled as the token key must not open: the
	// wrap is bound to its owner name.
	relabelled := blind
	relabelled.Owner = SystemToken
	shredded := token
	shredded.Shredded = true

	for _, tt := range []struct {
		name   string
		err    error
		wantIs error
	}{
		{"swapped", k.LoadSystemKeys(token, blind), nil},
		{"relabelled wrap", k.LoadSystemKeys(blind, relabelled), ErrDecrypt},
		{"shredded", k.LoadSystemKeys(blind, shredded), ErrShredded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("LoadSystemKeys succeeded")
			}
			if tt.wantIs != nil && !errors.Is(tt.err, tt.wantIs) {
				t.Fatalf("error %v, want %v", tt.err, tt.wantIs)
			}
		})
	}
	if _, err := k.BlindIndex("x"); !errors.Is(err, ErrNoKey) {
		t.Fatal("a failed load made keys current")
	}
	if _, err := k.NewSystemKey("system/other", t0); err == nil {
		t.Fatal("NewSystemKey accepted an unknown name")
	}
}

func TestTokens(t *testing.T) {
	k := newKeyring(t, Options{})
	if _, err := k.SealToken("cursor", []byte("x")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("SealToken before load: %v, want ErrNoKey", err)
	}
	if _, err := k.OpenToken("cursor", "AAAA"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("OpenToken before load: %v, want ErrNoKey", err)
	}
	loadSystemKeys(t, k)
	other := newKeyring(t, Options{})
	loadSystemKeys(t, other)

	data := []byte(`{"after":"Observation/o1","offset":50}`)
	tok, err := k.SealToken("cursor/Observation", data)
	if err != nil {
		t.Fatalf("SealToken: %v", err)
	}
	if strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q is not unpadded base64url", tok)
	}
	if strings.Contains(tok, "Observation") {
		t.Error("token shows its content")
	}
	got, err := k.OpenToken("cursor/Observation", tok)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenToken = %q, %v", got, err)
	}
	if _, err := k.SealToken("", data); err == nil {
		t.Error("SealToken accepted an empty purpose")
	}

	swap := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name, purpose, token string
		k                    *Keyring
	}{
		{"other purpose", "cursor/Patient", tok, k},
		{"empty purpose", "", tok, k},
		{"other keyring", "cursor/Observation", tok, other},
		{"first char", "cursor/Observation", swap(tok, 0), k},
		{"middle char", "cursor/Observation", swap(tok, len(tok)/2), k},
		{"last char", "cursor/Observation", swap(tok, len(tok)-2), k},
		{"truncated", "cursor/Observation", tok[:len(tok)-3], k},
		{"extended", "cursor/Observation", tok + "AAAA", k},
		{"padded", "cursor/Observation", tok + "=", k},
		{"std alphabet", "cursor/Observation", "+/" + tok, k},
		{"empty", "cursor/Observation", "", k},
		{"too long", "cursor/Observation", strings.Repeat("A", MaxTokenLen+1), k},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.k.OpenToken(tt.purpose, tt.token)
			if err != ErrDecrypt {
				t.Fatalf("OpenToken error = %v, want ErrDecrypt itself", err)
			}
			if pt != nil {
				t.Fatal("OpenToken returned data with an error")
			}
		})
	}

	if _, err := k.SealToken("p", make([]byte, MaxTokenLen)); err == nil {
		t.Error("SealToken made a token longer than MaxTokenLen")
	}
}

func TestAuditKey(t *testing.T) {
	k := newKeyring(t, Options{})
	loadSystemKeys(t, k) // two records: no audit key
	if _, err := k.SealAudit("event/1", []byte("e")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("SealAudit without audit key: %v, want ErrNoKey", err)
	}
	recs := map[ident.Owner]storage.KeyRecord{}
	for _, name := range []ident.Owner{SystemBlindIndex, SystemToken, SystemAudit} {
		rec, err := k.NewSystemKey(name, t0)
		if err != nil {
			t.Fatal(err)
		}
		recs[name] = rec
	}
	if err := k.LoadSystemKeys(recs[SystemBlindIndex], recs[SystemToken], recs[SystemToken]); err == nil {
		t.Fatal("LoadSystemKeys accepted a token record as the audit key")
	}
	if err := k.LoadSystemKeys(recs[SystemBlindIndex], recs[SystemToken], recs[SystemAudit]); err != nil {
		t.Fatal(err)
	}
	ct, err := k.SealAudit("event/1", []byte(`{"action":"read"}`))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.OpenAudit("event/1", ct); err != nil || string(pt) != `{"action":"read"}` {
		t.Fatalf("OpenAudit = %q, %v", pt, err)
	}
	if _, err := k.OpenAudit("event/2", ct); err != ErrDecrypt {
		t.Fatalf("OpenAudit with another context: %v, want ErrDecrypt", err)
	}
	if _, err := k.DEK(recs[SystemAudit]); err == nil {
		t.Fatal("the audit key was usable as a DEK")
	}
	if _, err := k.Rewrap(recs[SystemAudit]); err != nil {
		t.Fatalf("Rewrap of the audit key: %v", err)
	}
}
