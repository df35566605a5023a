package keys

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/core/cryptofmt"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/phivault/phivault/internal/ident"
)

// DEK is one owner's unwrapped data-encryption key: a Tink AES-256-GCM
// keyset whose primary key seals and whose every key opens. A DEK is
// immutable and safe for concurrent use; get one from [Keyring.DEK].
type DEK struct {
	_ noCompare

	owner   ident.Owner
	aead    tink.AEAD
	primary uint32
	nkeys   int
}

// newDEK builds a DEK from an unwrapped keyset of owner.
func newDEK(owner ident.Owner, h *keyset.Handle) (*DEK, error) {
	if err := checkAES256GCM(h); err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	p, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	return &DEK{owner: owner, aead: a, primary: p.KeyID(), nkeys: h.Len()}, nil
}

// Seal encrypts plaintext with AES-256-GCM under the DEK's primary key,
// binding ad (see [ResourceAD]). The output starts with Tink's 5-byte
// key-id prefix, then a random 96-bit nonce, the ciphertext and a 128-bit
// tag: 33 bytes of overhead. ad.Owner must be the DEK's owner; sealing
// another owner's resource is refused, since that data would be shredded
// with the wrong patient.
func (d *DEK) Seal(plaintext []byte, ad ResourceAD) ([]byte, error) {
	if ad.Owner != d.owner {
		return nil, fmt.Errorf("sealing %s/%s: key of %s cannot seal data of %s", ad.Type, ad.ID, d.owner, ad.Owner)
	}
	ct, err := d.aead.Encrypt(plaintext, ad.bytes())
	if err != nil {
		return nil, fmt.Errorf("sealing %s/%s: %w", ad.Type, ad.ID, err)
	}
	return ct, nil
}

// Open decrypts a ciphertext made by [DEK.Seal] with the same ad, under
// any key of the DEK's keyset. Any failure (tampering, another ad, a
// retired key, a short input) returns exactly [ErrDecrypt], with no
// detail and no partial plaintext.
func (d *DEK) Open(ciphertext []byte, ad ResourceAD) ([]byte, error) {
	if ad.Owner != d.owner {
		return nil, ErrDecrypt
	}
	pt, err := d.aead.Decrypt(ciphertext, ad.bytes())
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// PrimaryID returns the Tink key id of the key that seals.
func (d *DEK) PrimaryID() uint32 { return d.primary }

// Owner returns the owner this DEK belongs to.
func (d *DEK) Owner() ident.Owner { return d.owner }

// SealedWithPrimary reports whether ciphertext carries the key-id prefix
// of the DEK's current primary key. It reads only the 5-byte prefix and
// does not authenticate anything; DEK rotation uses it to skip versions
// that were already re-sealed, which makes the job resumable.
func (d *DEK) SealedWithPrimary(ciphertext []byte) bool {
	id, ok := KeyIDOf(ciphertext)
	return ok && id == d.primary
}

// KeyIDOf returns the Tink key id in a ciphertext's 5-byte prefix
// (0x01 followed by the big-endian key id), and false if ciphertext is
// too short or has no Tink prefix. Every ciphertext of this package has
// one: this is how each records the key that sealed it.
func KeyIDOf(ciphertext []byte) (uint32, bool) {
	if len(ciphertext) < cryptofmt.TinkPrefixSize || ciphertext[0] != cryptofmt.TinkStartByte {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:cryptofmt.TinkPrefixSize]), true
}

// String implements [fmt.Stringer] without key material.
func (d *DEK) String() string {
	return fmt.Sprintf("keys.DEK{owner=%s, primary=%d, keys=%d}", d.owner, d.primary, d.nkeys)
}

// GoString keeps %#v from printing fields.
func (d *DEK) GoString() string { return d.String() }

// LogValue implements [slog.LogValuer] without key material.
func (d *DEK) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("owner", d.owner.String()),
		slog.Uint64("primary", uint64(d.primary)),
		slog.Int("keys", d.nkeys),
	)
}

// Owner names.
const (
	// OwnerOrg owns resources outside any patient compartment.
	OwnerOrg = ident.Org
	// patientPrefix starts every patient owner: "Patient/<id>".
	patientPrefix = ident.PatientPrefix
	// maxOwnerLen bounds an owner name: "Patient/" plus a FHIR id, which
	// is at most 64 characters (FHIR R4 id datatype).
	maxOwnerLen = len(patientPrefix) + 64
)

// checkDEKOwner accepts "org" and "Patient/<id>"; anything else, system
// key names in particular, can never name a DEK.
func checkDEKOwner(owner ident.Owner) error {
	if owner == OwnerOrg {
		return nil
	}
	id, ok := strings.CutPrefix(string(owner), patientPrefix)
	if !ok {
		id, ok = strings.CutPrefix(string(owner), jointPrefix)
	}
	if !ok || id == "" || len(owner) > maxOwnerLen || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid key owner %q, want %q, %q or %q", owner, OwnerOrg, patientPrefix+"<id>", jointPrefix+"<h>")
	}
	return nil
}

// jointPrefix starts the owner of the key of a resource naming several
// patients (storage.JointPrefix).
const jointPrefix = ident.JointPrefix
