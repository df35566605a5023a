package keys

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// TestAuthRowKeyBindsRow: a row MAC changes with the table, the primary
// key and every field, and with how bytes are split between fields; the
// lookup hash is keyed (not SHA-256, different per key) and separated
// from the MAC and by kind; a record of another owner does not load.
func TestAuthRowKeyBindsRow(t *testing.T) {
	k := newKeyring(t, Options{})
	rec, err := k.NewSystemKey(SystemAuthRows, t0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.LoadAuthRowKey(rec)
	if err != nil {
		t.Fatal(err)
	}
	base := a.MAC("api_tokens", "tok-1", []byte("ab"), []byte("c"))
	if len(base) != AuthMACSize || !a.Verify(base, "api_tokens", "tok-1", []byte("ab"), []byte("c")) {
		t.Fatal("a MAC does not verify its own row")
	}
	for name, m := range map[string][]byte{
		"table":  a.MAC("users", "tok-1", []byte("ab"), []byte("c")),
		"id":     a.MAC("api_tokens", "tok-2", []byte("ab"), []byte("c")),
		"field":  a.MAC("api_tokens", "tok-1", []byte("ab"), []byte("d")),
		"split":  a.MAC("api_tokens", "tok-1", []byte("a"), []byte("bc")),
		"count":  a.MAC("api_tokens", "tok-1", []byte("ab"), []byte("c"), nil),
		"joined": a.MAC("api_tokens", "tok-1ab", []byte("c")),
	} {
		if bytes.Equal(m, base) {
			t.Errorf("changing the %s leaves the MAC unchanged", name)
		}
	}
	if a.Verify(nil, "api_tokens", "tok-1", []byte("ab"), []byte("c")) || a.Verify(base[:31], "api_tokens", "tok-1", []byte("ab"), []byte("c")) {
		t.Error("a missing or short MAC verifies")
	}

	h := a.LookupHash("api-token", "pvt_secret")
	plain := sha256.Sum256([]byte("pvt_secret"))
	if bytes.Equal(h, plain[:]) || bytes.Equal(h, a.LookupHash("session", "pvt_secret")) || bytes.Equal(h, a.MAC("api-token", "pvt_secret")) {
		t.Error("the lookup hash is unkeyed, or not separated by kind or from the MAC")
	}
	rec2, err := k.NewSystemKey(SystemAuthRows, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.LoadAuthRowKey(rec2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b.LookupHash("api-token", "pvt_secret"), h) || b.Verify(base, "api_tokens", "tok-1", []byte("ab"), []byte("c")) {
		t.Error("another key computes the same hash or MAC")
	}
	if s := a.String() + a.GoString(); strings.Contains(s, string(a.mac)) {
		t.Error("String leaks the key")
	}
	ledger, err := k.NewSystemKey(SystemLedger, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.LoadAuthRowKey(ledger); err == nil {
		t.Error("the ledger key loads as the auth-rows key")
	}
}
