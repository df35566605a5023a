package login

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ChallengeTTL is how long a challenge stays usable: five minutes, time
// to open an authenticator app or find the recovery sheet, short enough
// that a challenge left in a browser tab is soon worthless (it is worth
// little anyway without the second factor).
const ChallengeTTL = 5 * time.Minute

// challengePurpose binds sealed challenges to this use: a paging cursor
// or any other keyring token never opens as a challenge.
const challengePurpose = "login-challenge"

// maxChallengePlain bounds the decrypted payload handed to the JSON
// decoder (a real one is about 100 bytes).
const maxChallengePlain = 512

// Steps a challenge can owe.
const (
	stepMFA    = "mfa"    // verify an enrolled second factor
	stepEnroll = "enroll" // enrol a second factor (and nothing else)
)

// challenge is the sealed content of a login challenge.
type challenge struct {
	User    string `json:"u"` // identity.User.ID
	Step    string `json:"s"` // stepMFA or stepEnroll
	Version int64  `json:"v"` // the user's Updated, unix µs, when issued
	Expires int64  `json:"e"` // unix seconds
	// Nonce (128 bits, base64url) names the challenge: the session it
	// completes stores its keyed hash, so it starts at most one session.
	Nonce string `json:"n"`
}

// nonceBytes is the challenge nonce's size: 128 bits, unguessable and
// never repeated by chance.
const nonceBytes = 16

// errChallenge is the one internal reason for a bad challenge; the
// service turns it into ErrInvalidChallenge.
var errChallenge = errors.New("malformed challenge")

// decodeChallenge parses a decrypted challenge strictly: known fields
// only, every field present and well formed, nothing after the object.
func decodeChallenge(b []byte) (challenge, error) {
	if len(b) > maxChallengePlain {
		return challenge{}, errChallenge
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c challenge
	if err := dec.Decode(&c); err != nil {
		return challenge{}, errChallenge
	}
	if dec.More() {
		return challenge{}, errChallenge
	}
	if c.User == "" || len(c.User) > 64 || (c.Step != stepMFA && c.Step != stepEnroll) || c.Version <= 0 || c.Expires <= 0 {
		return challenge{}, errChallenge
	}
	if n, err := base64.RawURLEncoding.DecodeString(c.Nonce); err != nil || len(n) != nonceBytes {
		// A challenge sealed before challenges were single use has no
		// nonce: refused, the user signs in again.
		return challenge{}, errChallenge
	}
	return c, nil
}

// sealChallenge gives c a fresh nonce and seals it into an opaque token.
func (s *Service) sealChallenge(c challenge) (string, error) {
	r := s.rand
	if r == nil {
		r = rand.Reader
	}
	var n [nonceBytes]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", fmt.Errorf("login challenge nonce: %w", err)
	}
	c.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding login challenge: %w", err)
	}
	tok, err := s.keys.SealToken(challengePurpose, b)
	if err != nil {
		return "", fmt.Errorf("sealing login challenge: %w", err)
	}
	return tok, nil
}

// openChallenge opens token (untrusted input) and checks its step and
// expiry at now. Every refusal is [ErrInvalidChallenge].
func (s *Service) openChallenge(token, step string, now time.Time) (challenge, error) {
	b, err := s.keys.OpenToken(challengePurpose, token)
	if err != nil {
		return challenge{}, ErrInvalidChallenge
	}
	c, err := decodeChallenge(b)
	if err != nil || c.Step != step || now.Unix() >= c.Expires {
		return challenge{}, ErrInvalidChallenge
	}
	return c, nil
}

// challengeUse is the single-use marker of c, stored with the session
// that completes it ([Commit.Challenge]).
func (s *Service) challengeUse(c challenge) (*CeremonyUse, error) {
	k, err := s.keys.BlindIndex(challengePurpose + "|" + c.Nonce)
	if err != nil {
		return nil, fmt.Errorf("marking login challenge: %w", err)
	}
	return &CeremonyUse{Key: k, Expires: time.Unix(c.Expires, 0)}, nil
}
