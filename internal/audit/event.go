package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// Action is the kind of access, aligned with FHIR AuditEvent subtypes
// (the RESTful interaction codes) and IHE BALP.
type Action string

// Actions recorded by phivault.
const (
	ActionRead        Action = "read"
	ActionVRead       Action = "vread"
	ActionSearch      Action = "search-type"
	ActionHistory     Action = "history"
	ActionCreate      Action = "create"
	ActionUpdate      Action = "update"
	ActionDelete      Action = "delete"
	ActionTransaction Action = "transaction"
	ActionBatch       Action = "batch"
	ActionEverything  Action = "$everything"
	ActionErase       Action = "$erase"
	ActionImport      Action = "import"
	ActionKeyRotate   Action = "key-rotate"
	ActionLogin       Action = "login"
	ActionTokenCreate Action = "token-create"

	// SMART client administration (web console). Entities: "Client/<id>".
	ActionClientRegister Action = "client-register"
	ActionClientDisable  Action = "client-disable"

	// Account administration (issue 3). Entities: "User/<id>". Denied
	// attempts carry OutcomeDenied and no entity when none was reached.
	ActionUserCreate      Action = "user-create"
	ActionUserDisable     Action = "user-disable"
	ActionUserEnable      Action = "user-enable"
	ActionUserSetRoles    Action = "user-set-roles"
	ActionUserResetMFA    Action = "user-reset-mfa"
	ActionUserSetPassword Action = "user-set-password" // a password set with an enrolment secret, or changed by its owner (policy "self-service")
	ActionUserAdmin       Action = "user-admin"        // an /admin/api request refused before any change
)

// Authentication events (issue 3). ActionLogin is a session started, or
// a login refused at the password step; these are its sub-steps and the
// session's end. Agent.User is the account id, or "unknown" for a name
// that has no account; Agent.Session is the session id once there is one.
const (
	ActionLoginPassword    Action = "login-password"     // password accepted, second factor owed
	ActionLockout          Action = "lockout"            // an account entered a lockout period
	ActionMFAEnrollStart   Action = "mfa-enroll-start"   // a TOTP secret was issued for enrolment
	ActionMFAEnroll        Action = "mfa-enroll"         // enrolment confirmed (or refused) with a first code
	ActionMFAVerify        Action = "mfa-verify"         // a second factor was checked
	ActionRecoveryCodeUsed Action = "recovery-code-used" // a recovery code was consumed
	ActionLogout           Action = "logout"             // a user ended their current session
	ActionSessionRevoke    Action = "session-revoke"     // a session ended by id ("Session/<id>"), or all of a user's by an admin ("User/<id>")

	// ActionSSOLogin is a sign-in through the enterprise IdP (OIDC): a
	// success once the IdP's identity is linked to an enabled account
	// (followed by ActionLogin when the session starts), a denial for a
	// forged callback, a failed exchange, no mapped role or a refused
	// account. Policies carry "oidc", "issuer=<url>", the IdP's
	// "amr=<a+b>" and "acr=<v>" when stated, and the reason; never a token.
	ActionSSOLogin Action = "sso-login"

	// Passkey management by the account's owner (ADR 0009). Entities
	// carry "Passkey/<phivault id>", never the credential id. Enrolment
	// with a passkey and sign-in with one are ActionMFAEnroll and
	// ActionMFAVerify with the policy "webauthn"; a refused sign-in whose
	// signature counter went backwards also carries "sign-count-regression".
	ActionPasskeyAdd    Action = "passkey-add"    // a passkey registered from a verified session (or refused)
	ActionPasskeyRename Action = "passkey-rename" // a passkey renamed
	ActionPasskeyRemove Action = "passkey-remove" // a passkey removed (or refused: the last second factor)
)

// Authorization events (issue: Cedar policies). Every FHIR access event
// carries the deciding policy ids in Policies; these are the events of
// authorization itself.
const (
	// ActionBreakGlass is a break-the-glass grant opened (success, with
	// purpose ETREAT) or refused (denied). Entities: "Patient/<id>" and
	// "Grant/<id>".
	ActionBreakGlass Action = "break-glass"
	// ActionReviewClose is a privacy officer closing a break-the-glass
	// review ("Review/<id>"); Policies carries the outcome.
	ActionReviewClose Action = "break-glass-review"
	// ActionReviewRead is a privacy officer reading the sealed free-text
	// reason of a break-the-glass grant under review.
	ActionReviewRead Action = "break-glass-review-read"
	// ActionPolicyChange is a policy set coming into force; Policies
	// carries "hash=<sha256>" and "source=<embedded|dir>".
	ActionPolicyChange Action = "policy-change"
	// ActionPolicyExplain is "phivault policy explain": a decision
	// computed for an operator, audited like any other.
	ActionPolicyExplain Action = "policy-explain"
	// ActionReindex is "phivault reindex": every current resource
	// decrypted to recompute its index rows; Policies carries the count.
	ActionReindex Action = "reindex"
)

// Outcome is the result of the access (FHIR AuditEvent.outcome, simplified).
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeDenied  Outcome = "denied"
	OutcomeError   Outcome = "error"
)

// Agent is who acted. It carries identifiers, never names.
type Agent struct {
	User    string `json:"user,omitempty"`    // account id or token name
	Role    string `json:"role,omitempty"`    // role in force
	Client  string `json:"client,omitempty"`  // OAuth client id or "cli"
	Session string `json:"session,omitempty"` // session id (not the secret)
	Address string `json:"address,omitempty"` // source IP
}

// Event is one audit record. It holds references and pseudonymous ids
// only: no resource content, no search values, no names.
type Event struct {
	Time      time.Time `json:"time"`
	Action    Action    `json:"action"`
	Outcome   Outcome   `json:"outcome"`
	Agent     Agent     `json:"agent"`
	Purpose   string    `json:"purpose,omitempty"`  // v3 PurposeOfUse code: TREAT, ETREAT, HOPERAT...
	Patients  []string  `json:"patients,omitempty"` // "Patient/<id>" of every patient touched
	Entities  []string  `json:"entities,omitempty"` // "Type/id/_history/v" of every resource touched
	Query     string    `json:"query,omitempty"`    // resource type and parameter names searched, never values
	Policies  []string  `json:"policies,omitempty"` // ids of the policies that decided
	Status    int       `json:"status,omitempty"`   // HTTP status returned
	RequestID string    `json:"request_id,omitempty"`
	// Ledger holds the commitments of a write to what it stored (ADR
	// 0016): keyed hashes, never content. Absent from events that change
	// no stored resource, and from every event written before ledger v1,
	// whose encoding is therefore unchanged.
	Ledger []Commit `json:"ledger,omitempty"`
}

// Marshal is the canonical encoding of e (JSON, fields in declaration order).
func (e Event) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding audit event: %w", err)
	}
	return b, nil
}
