package keys

import "errors"

// Sentinel errors. Callers test them with [errors.Is]; the wrapping text
// names the operation and the owner, never key material or plaintext.
var (
	// ErrDecrypt means a ciphertext, wrapped key or token failed to
	// authenticate: it was tampered with, copied onto another record,
	// version or owner, sealed under a key that has since been retired,
	// or is not a ciphertext at all. It carries no detail on purpose
	// (no oracle). The FHIR layer logs it as an integrity failure and
	// answers 500 for stored data, 400 for a client-supplied token.
	ErrDecrypt = errors.New("keys: decryption failed")

	// ErrShredded means the owner's key was destroyed (crypto-shredding):
	// its data is gone for good. The FHIR layer answers 410 Gone.
	ErrShredded = errors.New("keys: key shredded")

	// ErrNoKey means a key needed for the operation is not loaded: the
	// system keys were not passed to [Keyring.LoadSystemKeys]. It is a
	// startup-order bug; callers answer 503 and log it.
	ErrNoKey = errors.New("keys: key not loaded")

	// ErrUnsupportedKMS means a KEK URI names a KMS whose client is not
	// compiled into this binary (only hcvault:// is). The operator must
	// use a key file or a Vault transit key.
	ErrUnsupportedKMS = errors.New("keys: KMS not compiled in")

	// ErrTokenTooLong means the data given to [Keyring.SealToken] would
	// make a token longer than [MaxTokenLen]: the caller's request was too
	// large to carry in a token (a 400, not a server fault).
	ErrTokenTooLong = errors.New("keys: token too long")
)
