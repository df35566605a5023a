package monitor

import "time"

// Kind is what an [Event] records.
type Kind string

// Kinds of events.
const (
	// KindAccess is an access of a user to a patient's record (a read,
	// search, export, update...). Patient is set.
	KindAccess Kind = "access"
	// KindLogin is a sign-in attempt at the password (or SSO) step.
	KindLogin Kind = "login"
	// KindMFA is a second-factor check.
	KindMFA Kind = "mfa"
	// KindToken is a request presenting a bearer token or session
	// (refused tokens are KindToken with OutcomeFailure).
	KindToken Kind = "token"
	// KindOther is any other event (administration, a request refused
	// before authentication...). It still counts for attack detection.
	KindOther Kind = "other"
)

// Outcome is an event's result.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess  Outcome = "success"
	OutcomeDenied   Outcome = "denied"    // refused by authorization
	OutcomeFailure  Outcome = "failure"   // failed authentication or an error
	OutcomeNotFound Outcome = "not-found" // the record asked for does not exist
)

// Event is one normalised event of a source. It holds references and
// pseudonymous ids only.
type Event struct {
	Time    time.Time
	Kind    Kind
	Outcome Outcome
	// User is the workforce member, "Practitioner/<id>" when the source
	// names one (or maps an account to one), else the source's own id of
	// the account ("User/<id>"); "" when unknown (a failed login with
	// an unknown name).
	User string
	// Login is the account name attempted, for authentication events
	// whose User is unknown (credential stuffing names accounts that do
	// not exist). It is never a password.
	Login string
	// Patient is "Patient/<id>" for an access; "" otherwise.
	Patient string
	// Action is the interaction: "read", "vread", "search", "create",
	// "update", "delete", "export", "$everything"...
	Action string
	// Bulk marks an access that returned or exported many records at
	// once (an export, a system-level search, a bulk read).
	Bulk bool
	// Purpose is the purpose of use stated (TREAT, ETREAT...), or "".
	Purpose string
	// BreakGlass marks an access under a break-the-glass grant.
	BreakGlass bool
	Address    string // source network address
	Session    string // session or token id (never the secret)
	// Ref identifies the source event for evidence: "AuditEvent/<id>"
	// for an ingested event, "leaf/<n>" for phivault's own log.
	Ref string
}
