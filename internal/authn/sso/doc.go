// Package sso is phivault's enterprise single sign-on: it joins the
// OpenID Connect relying party (package oidc) to phivault accounts and
// to the interactive login (package login).
//
// # Flow
//
//  1. [Service.Start] draws an oidc.Flow (state, nonce, PKCE verifier),
//     seals it with the keyring (purpose "oidc-flow", with an expiry of
//     oidc.FlowTTL inside the sealed value, so a replayed or kept cookie
//     dies on time whatever the browser does) and returns it with the
//     IdP's authorization URL. The HTTP layer puts the sealed flow in a
//     cookie scoped to the callback path.
//  2. [Service.Finish] opens the flow, checks the state in constant time,
//     exchanges the code (PKCE verifier, nonce), and links the verified
//     identity by (issuer, subject) to an account: auto-provisioning a
//     new workforce account on first sign-in (unless
//     [Options.NoAutoProvision]), refusing a disabled one, and bringing
//     the account's roles to the IdP's mapped groups under the two-person
//     rule (ADR 0018): removals and roles that reach no PHI at once
//     (audited, the account's other sessions revoked); roles that reach
//     PHI, and security-admin, as a request by "sso" that a phivault
//     security administrator approves. An account with no role yet is
//     refused ([ErrAwaitingApproval]).
//  3. It then hands the account to login.Service.LoginExternal: with the
//     IdP's statement of a second factor (amr/acr) the session starts;
//     without one, the result is phivault's own MFA challenge (enrol
//     TOTP, or verify it) exactly as after a password.
//
// # Security invariants
//
//   - No callback reaches the token endpoint without a flow this
//     browser was given and a matching state ([ErrState]).
//   - Accounts are linked by (issuer, subject) only, never by e-mail or
//     preferred_username: those only seed the username of a new account,
//     sanitised to the identity rules and made unique with a suffix.
//   - Roles come only from the IdP's groups through the configured map;
//     a sign-in with no mapped group is refused ([ErrNoRole]) and
//     provisions nothing. The "patient" and "system" roles cannot be
//     provisioned (the role map refuses them).
//   - Every outcome is audited (audit.ActionSSOLogin, and user-create and
//     user-set-roles in the transaction of the change) with the issuer
//     and the IdP's amr/acr, never a token, code, state or nonce. A
//     refusal that cannot be audited fails closed.
//
// # Concurrency
//
// A [Service] is immutable after [New] and safe for concurrent use. Two
// concurrent first sign-ins of one identity converge on one account: the
// link's primary key lets only one commit, and the other reads it back.
package sso
