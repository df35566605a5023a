package keys

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	tinked25519 "github.com/tink-crypto/tink-go/v2/signature/ed25519"
	"github.com/tink-crypto/tink-go/v2/tink"
	"golang.org/x/mod/sumdb/note"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// SystemLogSigner is the Ed25519 key that signs the audit log's
// checkpoints (C2SP tlog-checkpoint, signed-note). It is a Tink keyset
// of one Ed25519 key without output prefix, so its signatures are plain
// RFC 8032 Ed25519 signatures that any note verifier checks. Like every
// system key it is stored wrapped under the KEK and never leaves this
// package unwrapped: a stolen database does not let anyone sign.
const SystemLogSigner ident.Owner = ident.SystemPrefix + "log-signer"

// LogSigner signs audit log checkpoints. It implements note.Signer
// (golang.org/x/mod/sumdb/note) over a Tink signer, so the private key
// is never exported from Tink. It is immutable and safe for concurrent
// use. String, GoString and LogValue show only the public verifier key.
type LogSigner struct {
	_ noCompare

	name string
	hash uint32
	vkey string
	s    tink.Signer
}

var _ note.Signer = (*LogSigner)(nil)

// LoadLogSigner unwraps the log signing key rec and binds it to the log
// name (the checkpoint origin and note key name). The verifier key
// depends on name: changing the log name changes the published key
// string, not the key. Errors wrap [ErrShredded] or [ErrDecrypt].
func (k *Keyring) LoadLogSigner(rec storage.KeyRecord, name string) (*LogSigner, error) {
	if rec.Owner != SystemLogSigner {
		return nil, fmt.Errorf("loading log signer: record owned by %q, want %q", rec.Owner, SystemLogSigner)
	}
	if err := checkLive(rec); err != nil {
		return nil, fmt.Errorf("loading log signer: %w", err)
	}
	h, err := k.kek.Load().unwrap(rec.Wrapped, rec.Owner)
	if err != nil {
		return nil, fmt.Errorf("loading log signer: %w", err)
	}
	pub, err := ed25519PublicKey(h)
	if err != nil {
		return nil, fmt.Errorf("loading log signer: %w", err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("loading log signer: log name %q: %w", name, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("loading log signer: %w", err)
	}
	s, err := signature.NewSigner(h)
	if err != nil {
		return nil, fmt.Errorf("loading log signer: %w", err)
	}
	return &LogSigner{name: name, hash: v.KeyHash(), vkey: vkey, s: s}, nil
}

// ed25519PublicKey checks that h holds exactly one enabled Ed25519 key
// without output prefix and returns its public key.
func ed25519PublicKey(h *keyset.Handle) (ed25519.PublicKey, error) {
	if h.Len() != 1 {
		return nil, fmt.Errorf("want one Ed25519 key, keyset has %d", h.Len())
	}
	e, err := h.Primary()
	if err != nil {
		return nil, err
	}
	priv, ok := e.Key().(*tinked25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an Ed25519 private key", e.Key())
	}
	if priv.Parameters().(*tinked25519.Parameters).Variant() != tinked25519.VariantNoPrefix {
		return nil, fmt.Errorf("Ed25519 key has an output prefix; note signatures need none")
	}
	pk, err := priv.PublicKey()
	if err != nil {
		return nil, err
	}
	pub, ok := pk.(*tinked25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T", pk)
	}
	return ed25519.PublicKey(pub.KeyBytes()), nil
}

// Name implements note.Signer: the log name.
func (s *LogSigner) Name() string { return s.name }

// KeyHash implements note.Signer.
func (s *LogSigner) KeyHash() uint32 { return s.hash }

// Sign implements note.Signer: an Ed25519 signature of msg.
func (s *LogSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.s.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint: %w", err)
	}
	return sig, nil
}

// VerifierKey returns the public note verifier key,
// "<name>+<hash>+<base64(0x01 || public key)>".
func (s *LogSigner) VerifierKey() string { return s.vkey }

// String implements [fmt.Stringer] with the public key only.
func (s *LogSigner) String() string { return "keys.LogSigner{" + s.vkey + "}" }

// GoString keeps %#v from printing fields.
func (s *LogSigner) GoString() string { return s.String() }

// LogValue implements [slog.LogValuer] with the public key only.
func (s *LogSigner) LogValue() slog.Value { return slog.StringValue(s.vkey) }
