package keys

import (
	"bytes"
	"testing"
)

// FuzzOpenToken feeds untrusted tokens (they arrive in URLs) to OpenToken:
// it must never panic, must fail with exactly ErrDecrypt, and a token
// sealed from the fuzzed purpose and data must round-trip. Seeds: the
// corpus in testdata/fuzz/FuzzOpenToken plus one real token.
func FuzzOpenToken(f *testing.F) {
	k := newKeyring(f, Options{})
	loadSystemKeys(f, k)
	valid, err := k.SealToken("cursor", []byte("page 2"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("cursor", valid, []byte("page 2"))
	f.Add("cursor", valid[:len(valid)-1], []byte{})

	f.Fuzz(func(t *testing.T, purpose, token string, data []byte) {
		pt, err := k.OpenToken(purpose, token)
		if err != nil {
			if err != ErrDecrypt || pt != nil {
				t.Fatalf("OpenToken(%q) = %q, %v; want nil, ErrDecrypt", token, pt, err)
			}
		} else if token != valid || purpose != "cursor" {
			t.Fatalf("OpenToken accepted a token it never sealed: %q", token)
		}

		if purpose == "" {
			return
		}
		tok, err := k.SealToken(purpose, data)
		if err != nil {
			return // too long for MaxTokenLen
		}
		got, err := k.OpenToken(purpose, tok)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %q = %q, %v", data, got, err)
		}
	})
}
