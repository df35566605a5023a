package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Action is the kind of access, aligned with FHIR AuditEvent subtypes
// (the RESTful interaction codes) and IHE BALP.
type Action string

// Actions recorded by phivault.
const (
	ActionRead   Action = "read"
	ActionVRead  Action = "vread"
	ActionSearch Action = "search-type"
	// ActionHistory is the history of one resource (FHIR
	// history-instance; the value predates the type and system levels).
	ActionHistory Action = "history"
	// ActionHistoryType and ActionHistorySystem are the history of a
	// resource type and of the whole server (FHIR history-type and
	// history-system).
	ActionHistoryType   Action = "history-type"
	ActionHistorySystem Action = "history-system"
	// ActionCapabilities is GET /fhir/metadata (FHIR capabilities).
	ActionCapabilities Action = "capabilities"
	ActionCreate       Action = "create"
	ActionUpdate       Action = "update"
	ActionDelete       Action = "delete"
	ActionTransaction  Action = "transaction"
	ActionBatch        Action = "batch"
	ActionEverything   Action = "$everything"
	// ActionBulkExport is a FHIR Bulk Data export (package bulk): the
	// kick-off (Entities "Job/<id>"), and the disclosure events of its
	// searches naming every patient exported, with the client's
	// registered purpose of use.
	ActionBulkExport Action = "$export"
	// ActionExportStatus, ActionExportDownload and ActionExportDelete are
	// a bulk export's status poll, file download and deletion (Entities
	// "Job/<id>", and "Job/<id>/file/<n>" for a download).
	ActionExportStatus   Action = "export-status"
	ActionExportDownload Action = "export-download"
	ActionExportDelete   Action = "export-delete"
	ActionErase          Action = "$erase"
	ActionImport         Action = "import"
	ActionKeyRotate      Action = "key-rotate"
	// ActionKeyEpoch is a step of a KEK epoch (crypto-shredding made
	// final, ADR 0015): Entities "key/kek-epoch/<n>"; Policies carry
	// "state=<retained|complete>", "erasures=<n>", "rewrapped=<n>",
	// "destroy_after=<RFC 3339>" or "destroyed=<KEK key ids>".
	ActionKeyEpoch Action = "key-epoch"
	// ActionKeyEscrow: an operator wrote an escrow of the key file (the
	// KEK, encrypted to age recipients for restores, ADR 0048): Entities
	// "key/kek-escrow"; Policies carry "kek_ids=<ids>",
	// "recipients=<n>".
	ActionKeyEscrow   Action = "key-escrow"
	ActionLogin       Action = "login"
	ActionTokenCreate Action = "token-create"
	// ActionLogAccept: an operator accepted the database's audit log as
	// the one to extend after the checkpoint kept outside the database
	// was lost ("phivault audit accept-checkpoint", ADR 0016). Entities
	// "checkpoint/<size>"; Policies "root=<base64>", "kept=<file>".
	ActionLogAccept Action = "audit-log-accept"

	// SMART client administration (web console, offline CLI). Entities:
	// "Client/<id>"; a registration's Policies carry "type=<type>",
	// "scopes=<scopes>" and "approval=<state>" (smart.ClientApproval).
	ActionClientRegister Action = "client-register"
	ActionClientDisable  Action = "client-disable"

	// The two-person rule for SMART clients (ADR 0020): a client whose
	// grants reach PHI is registered pending; one administrator's
	// request is approved or rejected (or withdrawn) by another.
	// Entities: "Client/<id>" and "Request/<id>"; Policies:
	// "requested-by=<id>" and "two-person-rule". A refusal
	// (self-approval, a stale request, an approver without a session)
	// is the same action with OutcomeDenied.
	ActionClientGrantRequest Action = "client-grant-request"
	ActionClientGrantApprove Action = "client-grant-approve"
	ActionClientGrantReject  Action = "client-grant-reject"

	// Account administration (DESIGN §7–8). Entities: "User/<id>". Denied
	// attempts carry OutcomeDenied and no entity when none was reached.
	ActionUserCreate      Action = "user-create"
	ActionUserDisable     Action = "user-disable"
	ActionUserEnable      Action = "user-enable"
	ActionUserSetRoles    Action = "user-set-roles"
	ActionUserResetMFA    Action = "user-reset-mfa"
	ActionUserSetPassword Action = "user-set-password" // a password set with an enrolment secret, or changed by its owner (policy "self-service")
	ActionUserAdmin       Action = "user-admin"        // an /admin/api request refused before any change

	// The two-person rule (ADR 0018): a role grant that reaches PHI is
	// requested by one administrator (or the identity provider's group
	// mapping) and approved or rejected by another. Entities:
	// "User/<id>" and "Request/<id>"; Policies: "roles=<requested>" and
	// "two-person-rule". A refusal (self-approval, a stale request) is
	// the same action with OutcomeDenied.
	ActionUserGrantRequest Action = "user-grant-request"
	ActionUserGrantApprove Action = "user-grant-approve"
	ActionUserGrantReject  Action = "user-grant-reject"
)

// Authentication events (DESIGN §7). ActionLogin is a session started, or
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
	// ActionLocate is a clinician's look-up of patients outside their
	// relationships (record.Service.Locate): a name search that told
	// them the name and birth date of the patients it names (Entities),
	// so that they could break the glass. Query names the parameters.
	ActionLocate Action = "patient-locate"
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
	// ActionConsentRepair is a security administrator listing (Policies
	// "list") or retiring a Consent authorization cannot read (an update
	// event with the policy "consent-repair" records the retirement).
	ActionConsentRepair Action = "consent-repair"
	// ActionReindex is "phivault reindex": every current resource
	// decrypted to recompute its index rows; Policies carries the count.
	ActionReindex Action = "reindex"
	// ActionAuthRowsStart is the first start with authenticated auth
	// rows (ADR 0022): the auth-rows key was created and every row that
	// grants access was MACed; Policies carries "<table>=<count>". A
	// second one in a log means the key was deleted: every row it
	// blessed must be reviewed.
	ActionAuthRowsStart Action = "auth-rows-start"
	// ActionAuthRowRefused is an integrity alarm: a row that grants
	// access had a missing or wrong MAC and was refused (ADR 0022).
	// Entities carry "<table>/<row id>", never a secret.
	ActionAuthRowRefused Action = "auth-row-refused"
	// ActionKeyRowTampered is an integrity alarm: a live row of the keys
	// table opens under no key of the key file (planted, copied from
	// another owner, or damaged), so a KEK epoch skipped it (ADR 0015).
	// Entities carry "key/<owner>".
	ActionKeyRowTampered Action = "key-row-tampered"
)

// Attempts (DESIGN §6: every request to /fhir, /auth, /admin leaves an
// event, whatever its outcome). When no handler recorded an event for
// such a request, the HTTP layer records a generic one before the
// response: on a FHIR path its interaction (ActionRead, ActionSearch,
// …) derived from the method and the path, elsewhere ActionRequest;
// Outcome from the status, Status the status; Query holds the method
// and the route (the resource type on FHIR paths), never a value; the
// agent as far as authentication got (at least the address).
const (
	// ActionRequest is a request to an audited path outside the FHIR
	// API that no handler audited: a refusal before any decision
	// (malformed, too large, unsupported, unknown route, no credential),
	// a failure, or a page or call that needs no event of its own.
	ActionRequest Action = "request"
	// ActionRateLimit aggregates the requests of one address refused
	// with 429 by the attempt limit during one interval: Agent.Address
	// is the address ("" for addresses beyond the tracked set), Status
	// 429, Policies "attempt-limit" and "count=<n>".
	ActionRateLimit Action = "rate-limit"
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

	// Compartments says whose each entity is: Compartments[i] lists the
	// positions in Patients of the patients in whose compartment
	// Entities[i] is (empty: in none). It is set by [Event.Touch]; nil in
	// events built otherwise (each then touches at most one patient) and
	// in events written before it existed. A patient's view of the event
	// ([Event.PatientView]) holds only that patient's entities.
	Compartments [][]int `json:"compartments,omitempty"`

	// Ledger holds the commitments of a write to what it stored (ADR
	// 0016): keyed hashes, never content. Absent from events that change
	// no stored resource, and from every event written before ledger v1,
	// whose encoding is therefore unchanged.
	Ledger []Commit `json:"ledger,omitempty"`
}

// Touch records that the event touched resource ref ("Type/id" or
// "Type/id/_history/v"), in the compartments of patients ("Patient/<id>";
// none for a resource outside every patient compartment): ref is
// appended to Entities, each patient not yet in Patients to Patients,
// and the link between them to Compartments. Use it for every entity
// of an event that may touch several patients (a search, a history), so
// that each patient's view shows only their own resources.
func (e *Event) Touch(ref string, patients ...string) {
	if len(e.Compartments) != len(e.Entities) {
		// Entities added without Touch: their owners are unknown, so
		// the event is treated as such (see PatientView) from now on.
		e.Entities = append(e.Entities, ref)
		for _, p := range patients {
			if p != "" && !slices.Contains(e.Patients, p) {
				e.Patients = append(e.Patients, p)
			}
		}
		return
	}
	owners := []int{}
	for _, p := range patients {
		if p == "" {
			continue
		}
		i := slices.Index(e.Patients, p)
		if i < 0 {
			e.Patients = append(e.Patients, p)
			i = len(e.Patients) - 1
		}
		if !slices.Contains(owners, i) {
			owners = append(owners, i)
		}
	}
	e.Entities = append(e.Entities, ref)
	e.Compartments = append(e.Compartments, owners)
}

// PatientView is the event as patient ("Patient/<id>") may see it in
// their access history (ADR 0018), and false when the event did
// not touch that patient. It keeps what the event did, when, why and
// with what outcome, and who did it (the account or client and its
// role); it drops every other patient and their resources, the agent's
// network address and session, and the deciding policies unless the
// event touched that patient alone (a policy can say something about
// another patient's record). Entities are the patient's own: those
// Compartments places in the patient's compartment; for an event
// without Compartments, all of them when the patient is the only one it
// touched, none otherwise (whose they are is not known: fail closed).
//
// Monitoring events (the privacy office's work on the log: an alert
// raised, read, decided, a suppression rule; [Action.Monitoring]) are
// no patient's: they are false for every patient, so that no patient
// (and through them, the person under review) learns of an alert
// before it is confirmed. Every patient path (the FHIR AuditEvent API,
// the portal, its accounting export) goes through this view.
func (e Event) PatientView(patient string) (Event, bool) {
	me := slices.Index(e.Patients, patient)
	if patient == "" || me < 0 || e.Action.Monitoring() {
		return Event{}, false
	}
	v := Event{Time: e.Time, Action: e.Action, Outcome: e.Outcome, Purpose: e.Purpose, Query: e.Query,
		Status: e.Status, RequestID: e.RequestID, Patients: []string{patient},
		Agent: Agent{User: e.Agent.User, Role: e.Agent.Role, Client: e.Agent.Client}}
	alone := len(e.Patients) == 1
	if alone {
		v.Policies = slices.Clone(e.Policies)
	}
	switch {
	case len(e.Compartments) == len(e.Entities) && e.Compartments != nil:
		for i, owners := range e.Compartments {
			if slices.Contains(owners, me) {
				v.Entities = append(v.Entities, e.Entities[i])
			}
		}
	case alone:
		v.Entities = slices.Clone(e.Entities)
	}
	return v, true
}

// Marshal is the canonical encoding of e (JSON, fields in declaration order).
func (e Event) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding audit event: %w", err)
	}
	return b, nil
}
