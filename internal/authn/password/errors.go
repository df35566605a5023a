package password

import "errors"

// Errors returned by this package. Their text is safe to log and, for the
// policy errors, to show to the person choosing a password: none of them
// ever contains the password, a salt or a hash. Callers use [errors.Is].
var (
	// ErrTooShort: the password has fewer than [MinRunes] characters.
	// Show the message and ask for a longer password (a passphrase).
	ErrTooShort = errors.New("password must be at least 12 characters")
	// ErrTooLong: the password has more than [MaxRunes] characters (or
	// [MaxPasswordBytes] bytes). Show the message.
	ErrTooLong = errors.New("password must be at most 128 characters")
	// ErrInvalidUTF8: the password is not valid UTF-8. Show the message.
	ErrInvalidUTF8 = errors.New("password is not valid text")
	// ErrCommon: the password is in the bundled list of common and
	// breached passwords, or is one with digits or symbols around it, or
	// repeats a short pattern. Show the message; NIST SP 800-63B asks
	// verifiers to say why a password was refused.
	ErrCommon = errors.New("password is too common: choose one that is not on lists of breached passwords")
	// ErrContext: the password contains the user name, the e-mail address
	// or the service name. Show the message.
	ErrContext = errors.New("password must not contain your user name, e-mail address or the service name")

	// ErrMalformed: a stored hash is not an argon2id PHC string within
	// this package's bounds. The stored data is corrupt or was planted:
	// log it (the error names the field, not its value), answer the login
	// exactly as for a wrong password, and alert an operator.
	ErrMalformed = errors.New("malformed password hash")
	// ErrUnsupported: a stored hash uses another algorithm or argon2
	// version. Handle as [ErrMalformed]; a migration must rehash it.
	ErrUnsupported = errors.New("unsupported password hash")
	// ErrInvalidParams: [Params] outside the bounds this package reads
	// back. A configuration error: fail at start-up.
	ErrInvalidParams = errors.New("invalid argon2id parameters")
	// ErrBusy: a [Hasher] already has its limit of KDF runs in progress
	// and its queue is full. Answer 503 with a Retry-After header, for a
	// known and an unknown user alike.
	ErrBusy = errors.New("too many password checks in progress")
)

// policyErrors are the errors that say why a chosen password was
// refused; their messages are shown to the person choosing it.
var policyErrors = []error{ErrTooShort, ErrTooLong, ErrInvalidUTF8, ErrCommon, ErrContext}

// PolicyError returns the policy error in err's chain (ErrTooShort,
// ErrTooLong, ErrInvalidUTF8, ErrCommon or ErrContext), whose message
// may be shown, or nil when err is not a refused password.
func PolicyError(err error) error {
	for _, pe := range policyErrors {
		if errors.Is(err, pe) {
			return pe
		}
	}
	return nil
}
