package keys

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/prf/hmacprf"
	"github.com/tink-crypto/tink-go/v2/signature"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// System key names: the Owner of their key records.
const (
	// SystemBlindIndex is the HMAC-SHA256 PRF key behind [Keyring.BlindIndex].
	SystemBlindIndex ident.Owner = ident.SystemPrefix + "blind-index"
	// SystemToken is the AES-256-GCM key behind [Keyring.SealToken].
	SystemToken ident.Owner = ident.SystemPrefix + "token"
	// SystemAudit is the AES-256-GCM log key behind [Keyring.SealAudit]:
	// audit event bodies are encrypted with it, not with a patient key,
	// so erasing a patient keeps the trail (DESIGN §6).
	SystemAudit ident.Owner = ident.SystemPrefix + "audit"
)

const (
	// BlindIndexSize is the length of a blind index: 128 bits. Collisions
	// are birthday-bound at 2^64 distinct values, far beyond any
	// database, and a rare collision costs only a false match that the
	// caller filters after decryption. Guessing a value's index without
	// the key has probability 2^-128. Shorter would save little index
	// space; longer buys nothing.
	BlindIndexSize = 16

	// MaxTokenLen caps a token accepted by [Keyring.OpenToken], in
	// characters. Tokens arrive in URLs from anyone; paging cursors are a
	// few dozen bytes, so 4096 leaves room and bounds decoding work.
	MaxTokenLen = 4096
)

// systemKeys are the loaded system primitives.
type systemKeys struct {
	prf   *prf.Set
	token tink.AEAD
	audit tink.AEAD // nil unless an audit record was loaded
}

// NewSystemKey creates the system key name ([SystemBlindIndex] and
// [SystemLedger], [SystemAuthRows]: an HMAC-SHA256 PRF keyset with a 256-bit key; [SystemToken] and
// [SystemAudit]: an AES-256-GCM keyset; [SystemLogSigner]: an Ed25519 keyset), wrapped under the KEK bound to name. Store it once
// at init; it is not loaded until [Keyring.LoadSystemKeys].
func (k *Keyring) NewSystemKey(name ident.Owner, now time.Time) (storage.KeyRecord, error) {
	var tmpl = aead.AES256GCMKeyTemplate()
	switch name {
	case SystemBlindIndex, SystemLedger, SystemAuthRows:
		tmpl = prf.HMACSHA256PRFKeyTemplate()
	case SystemLogSigner:
		// Ed25519 without Tink's 5-byte prefix: C2SP signed notes carry
		// plain RFC 8032 signatures.
		tmpl = signature.ED25519KeyWithoutPrefixTemplate()
	case SystemToken, SystemAudit:
	default:
		return storage.KeyRecord{}, fmt.Errorf("creating system key: unknown name %q", name)
	}
	h, err := keyset.NewHandle(tmpl)
	if err != nil {
		return storage.KeyRecord{}, fmt.Errorf("creating system key %s: %w", name, err)
	}
	return k.record(name, h, now)
}

// LoadSystemKeys unwraps the blind-index and token keys, and the audit
// key if one is passed as the optional third record, and makes them
// current. It checks each record's owner and key type, and computes one
// blind index, so that [Keyring.BlindIndex] cannot fail afterwards. It may
// be called again (after a rewrap); readers see the old or the new keys,
// never a mix. Errors wrap [ErrShredded] or [ErrDecrypt].
func (k *Keyring) LoadSystemKeys(blind, token storage.KeyRecord, audit ...storage.KeyRecord) error {
	if blind.Owner != SystemBlindIndex || token.Owner != SystemToken {
		return fmt.Errorf("loading system keys: got owners %q and %q, want %q and %q",
			blind.Owner, token.Owner, SystemBlindIndex, SystemToken)
	}
	if len(audit) > 1 || (len(audit) == 1 && audit[0].Owner != SystemAudit) {
		return fmt.Errorf("loading system keys: want at most one extra record, owned by %q", SystemAudit)
	}
	for _, rec := range append([]storage.KeyRecord{blind, token}, audit...) {
		if err := checkLive(rec); err != nil {
			return fmt.Errorf("loading system keys: %w", err)
		}
	}
	bh, err := k.kek.Load().unwrap(blind.Wrapped, blind.Owner)
	if err != nil {
		return fmt.Errorf("loading system keys: %w", err)
	}
	if err := checkHMACSHA256PRF(bh); err != nil {
		return fmt.Errorf("loading system key %s: %w", SystemBlindIndex, err)
	}
	ps, err := prf.NewPRFSet(bh)
	if err != nil {
		return fmt.Errorf("loading system key %s: %w", SystemBlindIndex, err)
	}
	if _, err := ps.ComputePrimaryPRF([]byte(domainProbe), BlindIndexSize); err != nil {
		return fmt.Errorf("loading system key %s: %w", SystemBlindIndex, err)
	}
	ta, err := k.loadAEAD(token)
	if err != nil {
		return fmt.Errorf("loading system keys: %w", err)
	}
	sk := &systemKeys{prf: ps, token: ta}
	if len(audit) == 1 {
		if sk.audit, err = k.loadAEAD(audit[0]); err != nil {
			return fmt.Errorf("loading system keys: %w", err)
		}
	}
	k.sys.Store(sk)
	return nil
}

// loadAEAD unwraps an AES-256-GCM system keyset into a primitive.
func (k *Keyring) loadAEAD(rec storage.KeyRecord) (tink.AEAD, error) {
	h, err := k.kek.Load().unwrap(rec.Wrapped, rec.Owner)
	if err != nil {
		return nil, err
	}
	if err := checkAES256GCM(h); err != nil {
		return nil, fmt.Errorf("loading system key %s: %w", rec.Owner, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("loading system key %s: %w", rec.Owner, err)
	}
	return a, nil
}

// SealAudit encrypts an audit event body with the audit log key, bound
// to context (e.g. the event's id or its position), with AES-256-GCM.
// Errors wrap [ErrNoKey] unless an audit record was given to
// [Keyring.LoadSystemKeys].
func (k *Keyring) SealAudit(context string, body []byte) ([]byte, error) {
	s := k.sys.Load()
	if s == nil || s.audit == nil {
		return nil, fmt.Errorf("sealing audit event: %w", ErrNoKey)
	}
	ct, err := s.audit.Encrypt(body, encodeAD(domainAudit, context))
	if err != nil {
		return nil, fmt.Errorf("sealing audit event: %w", err)
	}
	return ct, nil
}

// OpenAudit decrypts a body made by [Keyring.SealAudit] with the same
// context. Any failure returns exactly [ErrDecrypt]; errors wrap
// [ErrNoKey] when no audit key is loaded.
func (k *Keyring) OpenAudit(context string, ciphertext []byte) ([]byte, error) {
	s := k.sys.Load()
	if s == nil || s.audit == nil {
		return nil, fmt.Errorf("opening audit event: %w", ErrNoKey)
	}
	pt, err := s.audit.Decrypt(ciphertext, encodeAD(domainAudit, context))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// checkHMACSHA256PRF reports an error unless every key in h is an
// HMAC-SHA256 PRF key of at least 256 bits.
func checkHMACSHA256PRF(h *keyset.Handle) error {
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return fmt.Errorf("reading keyset entry %d: %w", i, err)
		}
		key, ok := e.Key().(*hmacprf.Key)
		if !ok {
			return fmt.Errorf("key %d is not an HMAC PRF", e.KeyID())
		}
		p, ok := key.Parameters().(*hmacprf.Parameters)
		if !ok || p.HashType() != hmacprf.SHA256 || p.KeySizeInBytes() < 32 {
			return fmt.Errorf("key %d is not HMAC-SHA256 with a 256-bit key", e.KeyID())
		}
	}
	return nil
}

// BlindIndex returns the 16-byte blind index of input: HMAC-SHA256 under
// the blind-index key, truncated (see [BlindIndexSize]). It is
// deterministic per key; callers pass the normalised value, prefixed by
// the search parameter code so equal values of different parameters do
// not match. See the package doc for what blind indexes leak.
//
// The only error is one wrapping [ErrNoKey], before
// [Keyring.LoadSystemKeys] succeeded. After that it cannot fail: the load
// computed an index with the same key and length, and HMAC has no other
// failure mode. It never panics.
func (k *Keyring) BlindIndex(input string) ([]byte, error) {
	s := k.sys.Load()
	if s == nil {
		return nil, fmt.Errorf("computing blind index: %w", ErrNoKey)
	}
	out, err := s.prf.ComputePrimaryPRF([]byte(input), BlindIndexSize)
	if err != nil {
		return nil, fmt.Errorf("computing blind index: %w", err)
	}
	return out, nil
}

// tokenEncoding is URL- and path-safe and has no padding to escape.
var tokenEncoding = base64.RawURLEncoding

// SealToken encrypts data into an opaque, URL-safe token (base64url,
// no padding) bound to purpose (e.g. "cursor/Observation"): a token opens
// only with the same purpose. Tokens hide and authenticate their content
// but do not expire; put a time in data if that matters. Errors wrap
// [ErrNoKey] before the system keys are loaded.
func (k *Keyring) SealToken(purpose string, data []byte) (string, error) {
	if purpose == "" {
		return "", errors.New("sealing token: empty purpose")
	}
	s := k.sys.Load()
	if s == nil {
		return "", fmt.Errorf("sealing token: %w", ErrNoKey)
	}
	ct, err := s.token.Encrypt(data, encodeAD(domainToken, purpose))
	if err != nil {
		return "", fmt.Errorf("sealing token: %w", err)
	}
	tok := tokenEncoding.EncodeToString(ct)
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("sealing token: %d characters, more than MaxTokenLen %d: %w", len(tok), MaxTokenLen, ErrTokenTooLong)
	}
	return tok, nil
}

// OpenToken decrypts a token made by [Keyring.SealToken] with the same
// purpose. token is untrusted input (from a URL): anything too long, not
// base64url, tampered with, or sealed for another purpose returns exactly
// [ErrDecrypt]. Errors wrap [ErrNoKey] before the system keys are loaded.
func (k *Keyring) OpenToken(purpose, token string) ([]byte, error) {
	s := k.sys.Load()
	if s == nil {
		return nil, fmt.Errorf("opening token: %w", ErrNoKey)
	}
	if len(token) > MaxTokenLen {
		return nil, ErrDecrypt
	}
	ct, err := tokenEncoding.DecodeString(token)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := s.token.Decrypt(ct, encodeAD(domainToken, purpose))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
