package passkey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Ceremony kinds.
const (
	KindRegister = "register"
	KindLogin    = "login"
)

// sealPurpose binds sealed ceremonies to this use: no other keyring
// token (a login challenge, a paging cursor) opens as a ceremony.
const sealPurpose = "webauthn-ceremony"

// maxCeremonyPlain bounds the decrypted payload handed to the JSON
// decoder (a real one is about 150 bytes).
const maxCeremonyPlain = 512

// Ceremony is the state of one registration or sign-in between Begin
// and Finish, kept by the client in sealed form. Version is the user's
// last-modified time (unix µs) at Begin: a ceremony outlives no change
// to the account (MFA reset, password change, disabling).
type Ceremony struct {
	Kind      string `json:"k"`
	User      string `json:"u"`
	Version   int64  `json:"v"`
	Challenge string `json:"c"` // base64url, 32 random bytes from go-webauthn
	Expires   int64  `json:"e"` // unix seconds
}

// Sealer is the slice of the keyring ceremonies need ([keys.Keyring]).
type Sealer interface {
	SealToken(purpose string, data []byte) (string, error)
	OpenToken(purpose, token string) ([]byte, error)
}

// Seal seals c into an opaque token for the client.
func Seal(k Sealer, c Ceremony) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding passkey ceremony: %w", err)
	}
	tok, err := k.SealToken(sealPurpose, b)
	if err != nil {
		return "", fmt.Errorf("sealing passkey ceremony: %w", err)
	}
	return tok, nil
}

// Open opens token (untrusted input) and checks its kind and expiry at
// now. Every refusal is [ErrInvalidCeremony].
func Open(k Sealer, token, kind string, now time.Time) (Ceremony, error) {
	b, err := k.OpenToken(sealPurpose, token)
	if err != nil {
		return Ceremony{}, ErrInvalidCeremony
	}
	c, err := decodeCeremony(b)
	if err != nil || c.Kind != kind || now.Unix() >= c.Expires {
		return Ceremony{}, ErrInvalidCeremony
	}
	return c, nil
}

// decodeCeremony parses a decrypted ceremony strictly: known fields
// only, each present and well formed, nothing after the object.
func decodeCeremony(b []byte) (Ceremony, error) {
	if len(b) > maxCeremonyPlain {
		return Ceremony{}, ErrInvalidCeremony
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Ceremony
	if err := dec.Decode(&c); err != nil || dec.More() {
		return Ceremony{}, ErrInvalidCeremony
	}
	ch, err := base64.RawURLEncoding.DecodeString(c.Challenge)
	if (c.Kind != KindRegister && c.Kind != KindLogin) || c.User == "" || len(c.User) > 64 ||
		c.Version <= 0 || c.Expires <= 0 || err != nil || len(ch) < 16 || len(ch) > 64 {
		return Ceremony{}, ErrInvalidCeremony
	}
	return c, nil
}

// UseKey is the input to the keyed hash that marks c used: the kind and
// the challenge. The caller stores only the keyed hash (a blind index),
// so the table holds no challenge.
func (c Ceremony) UseKey() string {
	return "webauthn-ceremony\x00" + c.Kind + "\x00" + c.Challenge
}
