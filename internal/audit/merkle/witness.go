package merkle

import (
	"crypto/rand"
	"fmt"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// A monitor can act as a witness (C2SP tlog-cosignature): after it has
// checked that a checkpoint is signed by the log and consistent with
// every checkpoint it saw before, it adds its own timestamped
// cosignature/v1 (Ed25519) to the note. Anyone who trusts the witness
// then knows the log showed that witness this tree, and not a fork.

// GenerateWitnessKey returns a new witness signing key (a note private
// key string: keep it secret) and its cosignature/v1 verifier key (to
// publish). name identifies the witness, e.g. "witness.example.org".
func GenerateWitnessKey(name string) (skey, vkey string, err error) {
	skey, plain, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("witness key: %w", err)
	}
	vkey, err = fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		return "", "", fmt.Errorf("witness key: %w", err)
	}
	return skey, vkey, nil
}

// newWitnessSigner returns the cosignature/v1 signer of a key made by
// GenerateWitnessKey.
func newWitnessSigner(skey string) (note.Signer, error) {
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	return s, nil
}

// Witness co-signs checkpoints of one log.
type Witness struct {
	signer note.Signer
	log    note.Verifier
}

// NewWitness returns the witness of the log whose checkpoints log
// verifies, signing with skey (GenerateWitnessKey).
func NewWitness(skey string, log note.Verifier) (*Witness, error) {
	s, err := newWitnessSigner(skey)
	if err != nil {
		return nil, err
	}
	return &Witness{signer: s, log: log}, nil
}

// Name is the witness's name.
func (w *Witness) Name() string { return w.signer.Name() }

// Cosign is [Cosign] with the witness's key.
func (w *Witness) Cosign(checkpoint []byte) ([]byte, error) {
	return Cosign(checkpoint, w.log, w.signer)
}

// Cosign returns the checkpoint note signed, with the log's signatures
// that log verifies kept, plus the witness's cosignature. The caller
// must have checked the checkpoint (Monitor.Check) first: a witness
// vouches for consistency, not only for the log's signature.
func Cosign(checkpoint []byte, log note.Verifier, w note.Signer) ([]byte, error) {
	n, err := note.Open(checkpoint, note.VerifierList(log))
	if err != nil {
		return nil, fmt.Errorf("%w: cosigning: %v", ErrSignature, err)
	}
	out, err := note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs}, w)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	return out, nil
}
