// Package totp implements the time-based one-time passwords of RFC 6238
// (TOTP) used as a second factor for workforce accounts, on top of
// [github.com/pquerna/otp].
//
// # Parameters
//
// Every secret is 160 random bits used with HMAC-SHA1, 6 digits and a
// 30-second step: the only combination every authenticator app honours
// (Google Authenticator ignores the algorithm, digits and period
// parameters of the key URI; others follow it). 160 bits is the secret
// length RFC 4226 §4 (R6) recommends. HMAC-SHA1 is not weakened by SHA-1
// collisions: HMAC's security rests on the compression function being a
// PRF (RFC 6151 §3 / Bellare 2006), which no known attack breaks.
//
// # Security invariants
//
//   - Each code is accepted at most once: [Verify] rejects every step at or
//     below the last step the caller recorded, so a code cannot be replayed,
//     and once a later code has been used no earlier code (still inside the
//     skew window) is accepted either. The caller must persist the step
//     [Verify] returns before answering the login request.
//   - The window is the current step and one step either side (RFC 6238
//     §5.2, network delay and clock drift), never wider.
//   - Codes are compared in constant time; input is strict (exactly six
//     ASCII digits once surrounding spaces are trimmed) and its length is
//     capped before any work is done.
//   - Secrets never appear in errors or logs: [Key] redacts itself in
//     String, GoString, LogValue and MarshalJSON; only [Key.Secret] and
//     [Key.URI] reveal it, for enrolment.
//   - Randomness is injected ([NewSecretFrom]); [NewSecret] uses crypto/rand.
//
// # Enrolment display
//
// [WriteQR] draws the otpauth:// URI as a QR code in a terminal (phivault
// demo) and [PNG] renders it for the web UI. Both are bounded in the size
// of the input they accept.
//
// # Errors
//
// Functions return errors wrapping the sentinels [ErrInvalidAccount],
// [ErrInvalidSecret], [ErrURITooLong] and [ErrInvalidSize]; callers use
// [errors.Is]. Verification failures are not errors: [Verify] returns false.
package totp
