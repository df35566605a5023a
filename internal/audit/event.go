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
}

// Marshal is the canonical encoding of e (JSON, fields in declaration order).
func (e Event) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding audit event: %w", err)
	}
	return b, nil
}
