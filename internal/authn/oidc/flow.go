package oidc

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"time"
)

const (
	// flowBytes is the entropy of each of state, nonce and PKCE verifier:
	// 256 bits, so none can be guessed within a login's lifetime. Encoded
	// in base64url it is 43 characters, the minimum length of a PKCE code
	// verifier (RFC 7636 §4.1: 43 to 128 unreserved characters).
	flowBytes = 32

	// maxFlowValue bounds the state a callback may present before it is
	// compared: 4x the length we issue.
	maxFlowValue = 4 * 43

	// FlowTTL is how long a login may take between [RP.AuthURL] and the
	// callback; the cookie holding the [Flow] should expire then. Ten
	// minutes is what OIDC Core §3.1.2.5 suggests for codes and leaves
	// time for an IdP MFA prompt.
	FlowTTL = 10 * time.Minute
)

// Flow is the per-login secret triple: the OAuth state (CSRF protection
// for the callback, RFC 6749 §10.12), the OIDC nonce (binds the ID token
// to this browser, OIDC Core §3.1.2.1) and the PKCE code verifier
// (binds the code to this client, RFC 7636).
//
// The caller keeps a Flow between [RP.AuthURL] and [RP.Exchange] in a
// cookie that is sealed (AEAD through internal/keys, so the browser can
// neither read nor forge it), HttpOnly, Secure, scoped to the callback
// path, expiring after [FlowTTL], and deleted when the callback runs (one
// use). It must be SameSite=Lax, not Strict: the callback is a top-level
// cross-site navigation from the IdP, and a Strict cookie would not be
// sent. Lax is safe here because the callback only consumes the Flow and
// the state check ([CheckState]) stops forged callbacks.
//
// A Flow is a secret: it redacts itself in logs and has no String method.
type Flow struct {
	State    string
	Nonce    string
	Verifier string
}

// NewFlow draws a fresh Flow of three independent 256-bit values from r
// (nil means crypto/rand.Reader). It returns an error only if r fails.
func NewFlow(r io.Reader) (Flow, error) {
	if r == nil {
		r = rand.Reader
	}
	var vals [3]string
	for i := range vals {
		b := make([]byte, flowBytes)
		if _, err := io.ReadFull(r, b); err != nil {
			return Flow{}, fmt.Errorf("drawing oidc login secrets: %w", err)
		}
		vals[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return Flow{State: vals[0], Nonce: vals[1], Verifier: vals[2]}, nil
}

// LogValue implements [slog.LogValuer]: a Flow never reaches a log.
func (Flow) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// CheckState compares the state a callback presented (got, untrusted)
// with the one stored in the Flow cookie (want) in constant time. It
// returns [ErrState] if either is empty, got is oversized, or they
// differ.
func CheckState(got, want string) error {
	if !equalSecret(got, want) {
		return ErrState
	}
	return nil
}

// equalSecret reports whether got and want are equal, non-empty and
// within maxFlowValue, comparing the contents in constant time.
func equalSecret(got, want string) bool {
	if got == "" || want == "" || len(got) > maxFlowValue {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
