package keys

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestLogSigner: the wrapped Ed25519 key signs notes that the standard
// note verifier accepts under the published key; the key survives a KEK
// rotation and rewrap; it is bound to its owner; nothing prints it.
func TestLogSigner(t *testing.T) {
	path := newKeyFile(t)
	k := NewKeyring(openFileKEKT(t, path), Options{})
	rec, err := k.NewSystemKey(SystemLogSigner, t0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.LoadLogSigner(rec, "clinic.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "clinic.example/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("signature does not verify with the published key: %v", err)
	}

	// KEK rotation: the rewrapped record gives the same public key.
	if _, err := RotateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	k.SetKEK(openFileKEKT(t, path))
	rw, err := k.Rewrap(rec)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := k.LoadLogSigner(rw, "clinic.example/audit")
	if err != nil || s2.VerifierKey() != s.VerifierKey() {
		t.Fatalf("after rewrap: %v, key %q want %q", err, s2.VerifierKey(), s.VerifierKey())
	}

	// The wrap is bound to its owner; other key types are refused.
	moved := rec
	moved.Owner = SystemAudit
	if _, err := k.LoadLogSigner(moved, "x"); err == nil {
		t.Error("a record of another owner loaded as the log signer")
	}
	aes, _ := k.NewSystemKey(SystemAudit, t0)
	aes.Owner = SystemLogSigner
	if _, err := k.LoadLogSigner(aes, "x"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("an AES key wrapped for another owner: %v, want ErrDecrypt", err)
	}
	if _, err := k.LoadLogSigner(rec, "bad name"); err == nil {
		t.Error("a log name with a space was accepted")
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%#v", s), fmt.Sprintf("%+v", s)} {
		if !strings.Contains(out, s.VerifierKey()) || strings.Contains(out, "PRIVATE") {
			t.Errorf("printed signer: %q", out)
		}
	}
}
