package passkey

import (
	"errors"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
)

// Errors. Their text is safe to show.
var (
	// ErrInvalidCeremony: the ceremony token is malformed, of another
	// kind, for another user or expired. The client starts the ceremony
	// again.
	ErrInvalidCeremony = errors.New("the passkey ceremony is invalid or expired; start again")
	// ErrRejected: the authenticator's answer failed verification (wrong
	// origin or RP ID, bad signature, no user verification, unknown or
	// foreign credential, malformed data). The error is a *RejectError
	// whose Reason is safe to log.
	ErrRejected = errors.New("the passkey was not accepted")
	// ErrSignCount: the signature counter did not increase, so the
	// authenticator may have been cloned (§6.1.1). Refuse and audit.
	ErrSignCount = errors.New("the passkey was not accepted")
	// ErrIPAddress: the base URL's host is an IP address, which cannot
	// be an RP ID (browsers offer WebAuthn to domains only). Run without
	// passkeys, or configure a host name.
	ErrIPAddress = errors.New("passkey: the base URL's host is an IP address; WebAuthn needs a domain name (localhost will do for a demo)")
	// ErrTooMany: the user already has MaxCredentials passkeys.
	ErrTooMany = errors.New("too many passkeys: remove one first")
)

// RejectError is an [ErrRejected] with a reason fit for the log: the
// go-webauthn error type and summary, never the values it compared.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return ErrRejected.Error() }

// Unwrap makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Unwrap() error { return ErrRejected }

// reject turns a go-webauthn error into a *RejectError, keeping the
// summary and dropping DevInfo (which quotes challenges and origins) and
// the wrapped cause.
func reject(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		// Some summaries end in a formatted cause after a colon; keep
		// only the fixed text before it.
		summary, _, _ := strings.Cut(pe.Details, ":")
		if len(summary) > 120 {
			summary = summary[:120]
		}
		return &RejectError{Reason: pe.Type + ": " + summary}
	}
	var uc *protocol.ErrorUnknownCredential
	if errors.As(err, &uc) {
		return &RejectError{Reason: "unknown credential"}
	}
	return &RejectError{Reason: "verification failed"}
}
