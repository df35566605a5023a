package totp

import "errors"

var (
	// ErrInvalidAccount is returned by [NewSecret] when the issuer or the
	// account name is empty, too long, contains a colon (the key URI
	// separator) or a control character. It is a programmer or
	// configuration error; show the user a generic message.
	ErrInvalidAccount = errors.New("totp: invalid issuer or account name")

	// ErrInvalidSecret is returned by [Code] when the stored secret is not
	// base32 of at least 128 bits. The stored record is corrupt; do not
	// let the user retry, alert an administrator.
	ErrInvalidSecret = errors.New("totp: invalid secret")

	// ErrURITooLong is returned by [WriteQR] and [PNG] when the URI is
	// longer than [MaxURILen].
	ErrURITooLong = errors.New("totp: uri too long for a qr code")

	// ErrInvalidSize is returned by [PNG] when size is outside
	// [MinPNGSize]..[MaxPNGSize] or too small for the code's modules.
	ErrInvalidSize = errors.New("totp: invalid png size")
)
