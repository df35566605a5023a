// Package account holds the audited changes of local accounts: each one
// writes the account, its side effects (enrolment secret, second
// factors, sessions, role requests, alerts) and its audit record in ONE
// transaction of the store's unit of work ([Store.Update] over a [Tx]),
// so a change is never committed without its audit event, and a
// disabled user or reset MFA never leaves a live session behind
// (ADR 0024).
//
// The rules live here, as ordinary Go over [Tx]: what to read and lock,
// what to check (the two-person rule's stale and self checks, the
// enrolment secret's owner), what to revoke and which records to write.
// The store implements Tx with plain statements (sqldb, with its row
// MACs); the administration service ([Service], service.go and
// grants.go) decides who may ask for which change and builds the audit
// records, and [SSOAccounts] is the account side of enterprise sign-in
// (sso.go). [Tokens] creates API tokens, the service accounts of
// integrations (tokens.go). The composition root (internal/app) only
// builds them: none of this package reaches the SQL store, app or a
// front end (internal/archtest).
//
// # Atomicity
//
// Every change commits in one database transaction together with its
// audit event and its side effects: the enrolment secret of a new
// account, the deletion of second factors on an MFA reset, and the
// revocation of every session of the user on disable, role change, MFA
// reset and password enrolment ([Create] and [Apply], on the store's
// unit of work: ADR 0024). A change is therefore never visible without
// its audit record, and a disabled account never keeps a live session.
//
// # Enrolment
//
// A new account has no password. [Service.Add] returns a one-time
// enrolment secret (256 bits, prefix "pve_", shown once, stored as its
// SHA-256, valid for [EnrolmentLifetime]); its owner sets a password with
// it ([Service.Enrol]), and enrols a second factor at first login.
//
// # Separation of duties (ADR 0018)
//
// No self-elevation: [Service] refuses (identity.ErrSelf, audited as
// denied with policy "separation-of-duties") any change an administrator
// makes to their own account, and any approval of a request they made or
// that is for their own account. The actor is the audit agent's User: a
// session's account id, or an API token's id (never an account id). The
// offline CLI acts as no account (Agent.Client "cli"); its grants
// outside the two-person rule are the *BreakGlass methods, which raise
// an alert.
//
// Two-person rule: a change that adds a role needing approval
// (identity.Role.NeedsApproval) applies its approval-free part at once
// and stores the rest as a pending request with an alert
// ("role-grant-requested"); a second administrator, signed in with a
// second factor, approves it ([Service.Approve]: the roles take effect,
// the account's sessions end, alert "role-grant-approved") or rejects it
// ([Service.Reject]). Each step is its own audit action
// (user-grant-request, -approve, -reject).
//
// # Security invariants
//
//   - Every function here appends its audit record in the transaction
//     of its change, and refuses a change without an audit builder.
//   - A change that disables an account, resets its second factors,
//     sets its password or changes its roles revokes its sessions in the
//     same transaction (as its [Change] says).
//   - An approval is refused if the request expired or the account's
//     roles changed since it was made ([identity.ErrRequestStale]), and
//     nobody approves their own request or a request for their own
//     account ([identity.ErrSelf]).
//
// Audit builders run inside the transaction and may run more than once
// (the unit of work retries a transaction that lost a race): they must
// have no side effects.
package account
