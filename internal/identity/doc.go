// Package identity holds local accounts and their roles: the [User]
// type, the default roles of DESIGN §8, validation, and the store
// capabilities [Directory] (read), [Admin] (account lifecycle and roles)
// and [Credentials] (password hash and MFA enrolment), split so that
// code which only reads accounts cannot change them (STYLE rule 15).
//
// The SQL implementation is sqldb.Store.Users(); the conformance suite
// is storagetest.RunIdentity. HTTP handlers and the CLI come later.
//
// # Security invariants
//
//   - No patient name in clear: a patient account's DisplayName must be
//     empty and its FHIRUser must reference a Patient; the name lives
//     only in the encrypted Patient resource. Usernames and workforce
//     display names are workforce identity, not PHI.
//   - A patient role is never combined with another role, so patient
//     access and workforce grants never mix on one account.
//   - Every workforce role requires a second factor ([Role.Workforce],
//     [User.RequiresMFA]); login enforces it, this package states it.
//   - The store holds only a password hash (PHC argon2id from the
//     password package), never a password; [User.LogValue] omits it and
//     the display name. Errors never quote a field's value.
//   - Stores validate every user they write ([User.Validate]), so an
//     invalid account cannot be created through any caller.
//   - Inputs are bounded: usernames 3–64 bytes of [a-z0-9._@-], display
//     names 128 runes, at most 16 roles, list pages at most [MaxPage].
//   - The store refuses a second enabled account bound to one FHIR user
//     ([ErrFHIRUserBound]) on create, enable and change of FHIR user,
//     with a unique index, so two administrators racing on a fleet
//     cannot both succeed.
//   - Mutations do not audit and do not end sessions; the caller appends
//     the audit event and calls session.Manager.RevokeAllForUser after
//     disabling, changing roles, changing the password or resetting MFA.
//
// # Separation of duties (ADR 0018)
//
// Account administration follows three rules:
//
//   - No self-elevation: nobody changes their own account (roles,
//     enabled state, second factors) through the administration surfaces,
//     nor approves a request that they made or that is for their own
//     account ([ErrSelf]).
//   - A FHIR user ("Practitioner/<id>" or "Patient/<id>") is bound to at
//     most one enabled account ([ErrFHIRUserBound]): an account bound to
//     a clinician's Practitioner inherits that clinician's care teams and
//     encounters, so a second binding is a copy of their access. The
//     store enforces it with a unique index on enabled accounts.
//   - Two-person rule: a role change that adds a role for which
//     [Role.NeedsApproval] holds does not take effect when it is
//     requested. It becomes a pending [Request]; a second administrator
//     approves it (it then takes effect) or rejects it, before it expires
//     ([RequestTTL]). Each step is audited and raises an alert the
//     privacy officer sees. Removing roles takes effect at once.
//
// An account with no role (created while its roles await approval) has
// no access at all; it may set its password and enrol a second factor
// meanwhile.
//
// # Concurrency
//
// Users are values; implementations of the interfaces are safe for
// concurrent use and serialise read-modify-write changes of one user.
package identity
