package totp

import (
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

const (
	// period is the time step X in seconds (RFC 6238 §4.1 default, and the
	// only period Google Authenticator honours).
	period = 30

	// Digits is the code length: 6, the RFC 4226 §5.3 minimum and what
	// every authenticator app displays.
	Digits = 6

	// skew is how many steps either side of the current one are accepted:
	// one, as RFC 6238 §5.2 recommends for network delay. With the
	// one-use rule this gives an online guesser at most 3 codes in 10^6
	// per attempt; attempts are rate limited by the caller.
	skew = 1

	// maxCodeInput caps the untrusted code string before any work
	// (rule 24): six digits plus generous surrounding spaces.
	maxCodeInput = 32

	// maxSecretLen caps the stored base32 secret: 512 bits is far above
	// anything we create ([SecretBytes]) and bounds HMAC key work.
	maxSecretLen = 104
)

// b32 is RFC 4648 base32 without padding, the secret encoding of the key
// URI format.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Step returns the RFC 6238 time step T = floor((t - T0) / X) with T0 = 0
// and X = 30 s. It returns -1 for times before the Unix epoch, which no
// code is valid for.
func Step(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return -1
	}
	return u / period
}

// Code returns the 6-digit SHA1 code for secret at time t, as an
// authenticator app would show it (tests and the demo use it). It returns
// an error wrapping [ErrInvalidSecret] if secret is not base32 of at least
// 128 bits, or t is before the Unix epoch.
func Code(secret string, t time.Time) (string, error) {
	s := Step(t)
	if s < 0 {
		return "", fmt.Errorf("generating totp code: time before 1970: %w", ErrInvalidSecret)
	}
	return generate(secret, s, otp.AlgorithmSHA1, otp.DigitsSix)
}

// Verify checks a user-typed code against secret at time now.
//
// It accepts the code of the current step or of one step either side
// (RFC 6238 §5.2), but never of a step at or below lastUsedStep: the
// caller stores the step returned on success and passes it back next
// time, so each code is accepted once and no code older than one already
// used is accepted. Pass 0 for a secret that has never been used. When a
// code matches more than one step in the window (a 10^-6 coincidence) the
// highest is returned, so the same code cannot be accepted a second time.
//
// code must be exactly six ASCII digits after leading and trailing spaces
// are trimmed; anything else, an invalid secret, or a time before the
// epoch returns (0, false). Codes are compared in constant time. Verify
// is safe for concurrent use; it is the caller's job to make the
// read-verify-store of lastUsedStep atomic per account (a compare-and-swap
// on the stored step) so two concurrent logins cannot both use one code.
func Verify(secret, code string, now time.Time, lastUsedStep int64) (step int64, ok bool) {
	if len(code) > maxCodeInput {
		return 0, false
	}
	code = strings.Trim(code, " ")
	if !isDigits(code, Digits) {
		return 0, false
	}
	cur := Step(now)
	if cur < 0 {
		return 0, false
	}
	matched := int64(-1)
	for s := cur - skew; s <= cur+skew; s++ {
		if s < 0 || s <= lastUsedStep {
			continue
		}
		want, err := generate(secret, s, otp.AlgorithmSHA1, otp.DigitsSix)
		if err != nil {
			return 0, false
		}
		// Ascending order: the highest matching step wins.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, false
	}
	return matched, true
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// generate is the one code path for every code this package produces or
// checks: RFC 4226 HOTP over counter step with pquerna/otp. The RFC 6238
// vectors (SHA256/SHA512, 8 digits) are tested through it.
func generate(secret string, step int64, alg otp.Algorithm, digits otp.Digits) (string, error) {
	if err := checkSecret(secret); err != nil {
		return "", err
	}
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
		Digits:    digits,
		Algorithm: alg,
	})
	if err != nil {
		return "", fmt.Errorf("generating totp code: %w", ErrInvalidSecret)
	}
	return code, nil
}

// checkSecret accepts what pquerna/otp accepts (case-insensitive base32,
// padding optional) but also requires 128 to 512 bits.
func checkSecret(secret string) error {
	if len(secret) > maxSecretLen {
		return fmt.Errorf("checking totp secret: %w", ErrInvalidSecret)
	}
	raw, err := b32.DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil || len(raw) < minSecretBytes {
		return fmt.Errorf("checking totp secret: %w", ErrInvalidSecret)
	}
	return nil
}
