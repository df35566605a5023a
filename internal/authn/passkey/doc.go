// Package passkey is phivault's WebAuthn relying party (W3C Web
// Authentication Level 3), a thin layer over
// github.com/go-webauthn/webauthn, which verifies every attestation and
// assertion: phivault parses and checks no CBOR, COSE key or signature
// itself.
//
// Passkeys are a second factor: the password step of package login
// comes first and names the account; the ceremony then proves possession
// of one of that account's credentials. The choices are recorded in
// docs/adr/0009-passkeys-second-factor.md.
//
// # Relying party
//
// The RP ID is the host of the configured public base URL (without the
// port) and the only accepted origin is that URL's origin
// (scheme://host[:port]); a page from any other origin, a sibling
// subdomain included, cannot use a credential (§7.1 step 9, §7.2 step 13).
// User verification is required at registration and at sign-in (the UV
// flag must be set), user presence always. Attestation conveyance is
// "none": phivault keeps no list of approved authenticator models, and an
// attestation it would not evaluate only adds a tracking identifier.
// Credential algorithms are ES256, EdDSA and RS256 (COSE -7, -8, -257),
// which cover every platform and roaming authenticator in use.
//
// # Ceremony state
//
// Nothing about a ceremony is kept in process memory. [Begin] returns the
// options for the browser and a [Ceremony]: its kind, the user, the
// user's last-modified time, the challenge and an expiry. The caller
// seals it with the keyring ([Seal], purpose "webauthn-ceremony") and
// hands the opaque token to the client, which returns it with the
// authenticator's answer; [Open] refuses a token that is malformed, of
// another kind or expired. Single use is the caller's job: package login
// records a keyed hash of the challenge ([Ceremony.UseKey]) in the
// transaction that consumes it, so a replayed answer finds it taken.
//
// # Security invariants
//
//   - Every Finish verifies challenge, origin, RP ID hash, type, user
//     presence, user verification and signature through go-webauthn, and
//     the answering credential must be one of the user's own.
//   - A sign counter that does not grow (both counts non-zero and the new
//     one not greater) is a clone warning: [RP.FinishLogin] refuses it
//     with [ErrSignCount] (§6.1.1).
//   - No challenge, credential id, public key or client data reaches an
//     error text: go-webauthn's diagnostic detail (which quotes expected
//     and received values) is dropped; only its error type and summary
//     are kept for the log.
//   - Work driven by the request is bounded: answers at [MaxResponseBytes],
//     credential ids at [MaxCredentialIDBytes], a user's credentials at
//     [MaxCredentials].
//
// # Concurrency
//
// An [RP] is immutable after [New] and safe for concurrent use.
package passkey
