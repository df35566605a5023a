// Package login is the interactive sign-in of local accounts: a password
// step, a second factor for every workforce account (TOTP, a passkey or
// a recovery code, with TOTP or passkey enrolment on first login), and
// the session that results. It also turns a session cookie back into an
// [authn.Principal], and lets the owner of a session manage their
// passkeys.
//
// # Flow
//
//  1. [Service.Login] checks the per-address rate limit, the per-account
//     lockout and the password. An account without a workforce role gets
//     a session at once. A workforce account gets a challenge instead: an
//     opaque token sealed by the keyring (purpose "login-challenge") that
//     names the user, the step still owed ("mfa" or "enroll"), the
//     account's last-modified time and an expiry five minutes away.
//  2. With an "enroll" challenge, [Service.EnrollTOTP] creates a TOTP
//     secret (sealed at rest, bound to the user id) and
//     [Service.ConfirmTOTP] checks a first code, marks the account
//     enrolled, replaces its recovery codes and starts the session.
//     Instead of TOTP, [Service.BeginPasskeyEnrol] and
//     [Service.FinishPasskeyEnrol] register a passkey (WebAuthn, package
//     passkey, ADR 0009) with the same effect: enrolled, recovery codes,
//     session.
//  3. With an "mfa" challenge, [Service.Verify] checks a TOTP code or a
//     recovery code and starts the session; [Service.BeginPasskeyLogin]
//     and [Service.FinishPasskeyLogin] do the same with a passkey.
//     [Result.Methods] lists what the challenge accepts.
//  4. From a session whose second factor was verified,
//     [Service.BeginPasskeyAdd] and [Service.FinishPasskeyAdd] register
//     more passkeys; [Service.Passkeys], [Service.RenamePasskey] and
//     [Service.DeletePasskey] manage them.
//
// # Passkey ceremonies
//
// A Begin returns the browser options and a sealed ceremony (package
// passkey); the client returns both with the authenticator's answer to
// the Finish. No ceremony state is kept in memory. A ceremony is bound
// to its user, to the user's last-modified time and (during sign-in and
// enrolment) to a still-valid login challenge; it expires after
// passkey.CeremonyTTL and is single use: the keyed hash of its
// challenge is stored ([CeremonyUse]) in the transaction that consumes
// it, so a replay conflicts.
//
// # Security invariants
//
//   - "No such user", "wrong password", "disabled" and "locked" get the
//     same answer, [ErrInvalidCredentials]; the unknown-user path runs a
//     dummy argon2id verification and updates a lockout row exactly as a
//     real account does (rows are keyed by a keyed hash of the name as
//     typed, so no typed name is stored in clear).
//   - A session of a workforce account exists only after a second factor
//     succeeded: sessions are created in the same transaction that
//     consumes the TOTP step (compare-and-set on last_step) or deletes
//     the recovery code, resets the lockout and appends the audit events.
//     A code therefore logs in at most once, even under concurrent
//     requests.
//   - Second-factor failures (wrong codes, refused or replayed passkey
//     answers, a passkey whose signature counter went backwards) count
//     toward the same lockout as password failures, and a correct
//     password alone never resets that count for an account that owes a
//     second factor.
//   - A passkey answer is accepted only for the configured origin and RP
//     ID, with user presence and user verification, from one of the
//     credentials of the user who passed the password step, and with a
//     signature counter that grew (or is zero on both sides).
//   - The last second factor of an enrolled account cannot be removed by
//     its owner ([ErrLastFactor]); only an administrator's MFA reset
//     (which also deletes passkeys and ends sessions) starts over.
//   - A challenge is refused once expired, for another step, or when the
//     account changed since it was issued (password change, MFA reset,
//     roles, disabling): its last-modified time is sealed into it.
//   - A password change ([Service.ChangePassword]) proves the current
//     password again under the same rate limit and lockout as a login,
//     and ends every session of the account in the transaction that
//     stores the new hash; the caller continues on a new session created
//     in that same transaction (the token rotates).
//   - Every authentication event is audited: in the transaction of the
//     state change when there is one, otherwise through the batcher; if
//     the audit append fails the attempt fails (fail closed).
//   - Secrets (passwords, codes, TOTP secrets, session tokens) and
//     passkey challenges and credential ids never reach an error text or
//     the audit log; audit events carry user ids (or "unknown" for a name
//     that has no account) and passkeys by phivault's own id.
//
// # Concurrency
//
// A [Service] is safe for concurrent use; it holds no per-request state.
package login
