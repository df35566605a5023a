package merkle_test

import (
	"errors"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// TestWitnessCosign: the witness adds a cosignature/v1 that verifies
// with its published key next to the log's signature, and refuses a
// checkpoint the log did not sign.
func TestWitnessCosign(t *testing.T) {
	c := newCrypt(t)
	skey, vkey, err := merkle.GenerateWitnessKey("witness.example.org")
	if err != nil {
		t.Fatal(err)
	}
	w, err := merkle.NewWitness(skey, c.verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := merkle.SignCheckpoint(testOrigin, 5, tlog.Hash{1}, c.signer)
	if err != nil {
		t.Fatal(err)
	}
	cos, err := w.Cosign(cp)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cos, note.VerifierList(c.verifier(t), wv))
	if err != nil || len(n.Sigs) != 2 || n.Sigs[1].Name != "witness.example.org" {
		t.Fatalf("co-signed note: %v %+v", err, n)
	}
	other := newCrypt(t) // another log key under the same name
	forged, err := merkle.SignCheckpoint(testOrigin, 5, tlog.Hash{2}, other.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cosign(forged); !errors.Is(err, merkle.ErrSignature) {
		t.Errorf("cosigning a checkpoint the log did not sign: %v, want ErrSignature", err)
	}
	if _, err := merkle.NewWitness("PRIVATE+KEY+bad", c.verifier(t)); err == nil {
		t.Error("a malformed witness key was accepted")
	}
}
