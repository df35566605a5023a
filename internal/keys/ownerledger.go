package keys

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Owner ledger keys (ADR 0016, amendment). A commitment keyed with the
// system ledger key survives an erasure: whoever holds the key file could
// hash a guess of an erased patient's resource and find it in the log.
// So every DEK owner also has a ledger secret: 32 random bytes sealed
// under its DEK (storage.KeyRecord.Ledger), destroyed with it. The
// commitment of an owner's version is HMAC-SHA256, under a key derived
// from that secret with HKDF-SHA256 (info: domain and owner), of the
// system-keyed commitment. Once the DEK is destroyed (and the KEK epoch
// has destroyed every KEK key that wrapped it) no guess can be checked.

const (
	domainLedgerSecret = "phivault/ledger-secret/v1" // + owner: AD of the sealed secret
	domainOwnerLedger  = "phivault/ledger/owner/v2"  // HKDF info prefix, + owner
	ledgerSecretSize   = 32
)

// OwnerLedger keys the ledger commitments of one owner's versions. It is
// immutable and safe for concurrent use; get one from
// [Keyring.OwnerLedger].
type OwnerLedger struct {
	_   noCompare
	key []byte
}

// Commit returns the owner's commitment to digest, a commitment made
// with the system ledger key ([LedgerKey.Version] or [LedgerKey.Index]).
func (o *OwnerLedger) Commit(digest []byte) []byte {
	m := hmac.New(sha256.New, o.key)
	m.Write(digest)
	return m.Sum(nil)
}

// String implements [fmt.Stringer] without key material.
func (o *OwnerLedger) String() string { return "keys.OwnerLedger{}" }

// GoString keeps %#v from printing fields.
func (o *OwnerLedger) GoString() string { return o.String() }

// ErrNoLedgerSecret means a key record has no ledger secret (made
// before owner ledger keys, or a system key): add one with
// [Keyring.AddLedgerSecret].
var ErrNoLedgerSecret = errors.New("keys: the key record has no ledger secret")

// AddLedgerSecret returns rec with a fresh ledger secret sealed under its
// DEK (NewDEK makes records with one). Errors wrap [ErrShredded] or
// [ErrDecrypt].
func (k *Keyring) AddLedgerSecret(rec storage.KeyRecord) (storage.KeyRecord, error) {
	d, err := k.DEK(rec)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	secret := make([]byte, ledgerSecretSize)
	if _, err := rand.Read(secret); err != nil {
		return storage.KeyRecord{}, fmt.Errorf("creating ledger secret of %s: %w", rec.Owner, err)
	}
	rec.Ledger, err = d.aead.Encrypt(secret, encodeAD(domainLedgerSecret, string(rec.Owner)))
	if err != nil {
		return storage.KeyRecord{}, fmt.Errorf("sealing ledger secret of %s: %w", rec.Owner, err)
	}
	return rec, nil
}

// OwnerLedger opens rec's ledger secret with its DEK and derives the
// owner's ledger key. Errors wrap [ErrShredded], [ErrDecrypt] or
// [ErrNoLedgerSecret].
func (k *Keyring) OwnerLedger(rec storage.KeyRecord) (*OwnerLedger, error) {
	if err := checkLive(rec); err != nil {
		return nil, err
	}
	if rec.Ledger == nil {
		return nil, fmt.Errorf("ledger key of %s: %w", rec.Owner, ErrNoLedgerSecret)
	}
	d, err := k.DEK(rec)
	if err != nil {
		return nil, err
	}
	secret, err := d.aead.Decrypt(rec.Ledger, encodeAD(domainLedgerSecret, string(rec.Owner)))
	if err != nil || len(secret) != ledgerSecretSize {
		return nil, fmt.Errorf("opening the ledger secret of %s: %w", rec.Owner, ErrDecrypt)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, string(encodeAD(domainOwnerLedger, string(rec.Owner))), sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("deriving the ledger key of %s: %w", rec.Owner, err)
	}
	return &OwnerLedger{key: key}, nil
}

// resealLedger re-seals a ledger secret sealed under keyset old under
// keyset nw (a DEK edited by rotation or retirement of old keys).
func resealLedger(owner ident.Owner, sealed []byte, old, nw *keyset.Handle) ([]byte, error) {
	if sealed == nil {
		return nil, nil
	}
	oa, err := aead.New(old)
	if err != nil {
		return nil, err
	}
	na, err := aead.New(nw)
	if err != nil {
		return nil, err
	}
	ad := encodeAD(domainLedgerSecret, string(owner))
	secret, err := oa.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("opening the ledger secret of %s: %w", owner, ErrDecrypt)
	}
	return na.Encrypt(secret, ad)
}
