package scenario

import (
	"encoding/json"
	"strconv"
	"time"
)

// Code systems of the event log (FHIR R4 AuditEvent, IHE BALP, DICOM).
const (
	sysEventType  = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysDICOM      = "http://dicom.nema.org/resources/ontology/DCM"
	sysRESTful    = "http://hl7.org/fhir/restful-interaction"
	sysSourceType = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole = "http://terminology.hl7.org/CodeSystem/object-role"
	// SystemAction is phivault's audit action code system; the log uses
	// it as a second subtype where no standard code says which step of a
	// sign-in an event is (login-password, mfa-verify, token) or that an
	// operation is a bulk export (export).
	SystemAction = "https://phivault.dev/fhir/CodeSystem/audit-action"
	// JTIPrefix carries the session or token id in agent.policy, as IHE
	// BALP does for the jti of an OAuth access token
	// (IHE.BasicAudit.OAUTHaccessTokenUse: "jti SHALL be prefixed with
	// urn:ietf:params:oauth:jti:").
	JTIPrefix = "urn:ietf:params:oauth:jti:"
)

type aeCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type aeRef struct {
	Reference string `json:"reference"`
}

type aeNetwork struct {
	Address string `json:"address"`
	Type    string `json:"type"`
}

type aeAgent struct {
	Who       *aeRef     `json:"who,omitempty"`
	AltID     string     `json:"altId,omitempty"`
	Name      string     `json:"name,omitempty"`
	Requestor bool       `json:"requestor"`
	Policy    []string   `json:"policy,omitempty"`
	Network   *aeNetwork `json:"network,omitempty"`
}

type aeSource struct {
	Observer struct {
		Display string `json:"display"`
	} `json:"observer"`
	Type []aeCoding `json:"type"`
}

type aeEntity struct {
	What aeRef    `json:"what"`
	Type aeCoding `json:"type"`
	Role aeCoding `json:"role"`
}

type auditEvent struct {
	ResourceType string     `json:"resourceType"`
	ID           string     `json:"id"`
	Type         aeCoding   `json:"type"`
	Subtype      []aeCoding `json:"subtype,omitempty"`
	Action       string     `json:"action"`
	Recorded     string     `json:"recorded"`
	Outcome      string     `json:"outcome"`
	OutcomeDesc  string     `json:"outcomeDesc,omitempty"`
	Agent        []aeAgent  `json:"agent"`
	Source       aeSource   `json:"source"`
	Entity       []aeEntity `json:"entity,omitempty"`
}

var (
	typeRest = aeCoding{System: sysEventType, Code: "rest", Display: "RESTful Operation"}
	typeAuth = aeCoding{System: sysDICOM, Code: "110114", Display: "User Authentication"}
	subLogin = aeCoding{System: sysDICOM, Code: "110122", Display: "Login"}
	subOut   = aeCoding{System: sysDICOM, Code: "110123", Display: "Logout"}
	source   = func() aeSource {
		var s aeSource
		s.Observer.Display = "Riverton General EHR"
		s.Type = []aeCoding{{System: sysSourceType, Code: "4", Display: "Application Server"}}
		return s
	}()
	entPatientType = aeCoding{System: sysEntityType, Code: "1", Display: "Person"}
	entPatientRole = aeCoding{System: sysObjectRole, Code: "1", Display: "Patient"}
)

var crude = map[string]string{"read": "R", "vread": "R", "search-type": "E", "update": "U", "delete": "D", "create": "C"}

// render writes ev as one AuditEvent line (with its newline) to buf.
func (w *world) render(buf []byte, id int64, ev *event) ([]byte, error) {
	ae := auditEvent{
		ResourceType: "AuditEvent",
		ID:           "ae" + strconv.FormatInt(id, 10),
		Recorded:     ev.t.UTC().Format(time.RFC3339),
		Outcome:      "0",
		Source:       source,
		Action:       "E",
	}
	ag := aeAgent{Requestor: true}
	if ev.user >= 0 {
		ag.Who = &aeRef{Reference: "Practitioner/" + w.pracs[ev.user].id}
	}
	if ev.addr != "" {
		ag.Network = &aeNetwork{Address: ev.addr, Type: "2"}
	}
	if ev.session != "" {
		ag.Policy = []string{JTIPrefix + ev.session}
	}
	switch ev.kind {
	case evAccess:
		ae.Type = typeRest
		ae.Subtype = []aeCoding{{System: sysRESTful, Code: ev.interaction}}
		ae.Action = crude[ev.interaction]
	case evExport:
		ae.Type = typeRest
		ae.Subtype = []aeCoding{{System: sysRESTful, Code: "operation"}, {System: SystemAction, Code: "export"}}
	case evLogin:
		ae.Type = typeAuth
		ae.Subtype = []aeCoding{subLogin, {System: SystemAction, Code: "login-password"}}
		ag.AltID = ev.login
		if ev.user < 0 {
			ag.Name = ev.login
		}
	case evMFA:
		ae.Type = typeAuth
		ae.Subtype = []aeCoding{subLogin, {System: SystemAction, Code: "mfa-verify"}}
		ag.AltID = ev.login
	case evLogout:
		ae.Type = typeAuth
		ae.Subtype = []aeCoding{subOut, {System: SystemAction, Code: "logout"}}
	case evToken:
		// A bearer token refused: an authentication failure of the
		// request, with the token's id (never the token) in policy.
		ae.Type = typeAuth
		ae.Subtype = []aeCoding{subLogin, {System: SystemAction, Code: "token"}}
	}
	switch ev.out {
	case outDenied:
		ae.Outcome, ae.OutcomeDesc = "4", "denied"
	case outNotFound:
		ae.Outcome, ae.OutcomeDesc = "4", "not-found"
	case outFailure:
		ae.Outcome, ae.OutcomeDesc = "4", "failure"
	}
	ae.Agent = []aeAgent{ag}
	for _, p := range ev.patients {
		ae.Entity = append(ae.Entity, aeEntity{What: aeRef{Reference: p}, Type: entPatientType, Role: entPatientRole})
	}
	b, err := json.Marshal(&ae)
	if err != nil {
		return buf, err
	}
	buf = append(buf, b...)
	return append(buf, '\n'), nil
}
