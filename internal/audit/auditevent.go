package audit

import (
	"encoding/base64"
	"strings"
	"time"
)

// Code systems of the FHIR R4 AuditEvent and of IHE Basic Audit Log
// Patterns (BALP) that [Event.AuditEvent] uses.
const (
	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysDICOM       = "http://dicom.nema.org/resources/ontology/DCM"
	sysRESTful     = "http://hl7.org/fhir/restful-interaction"
	sysAction      = "http://hl7.org/fhir/audit-event-action"
	sysPurpose     = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	sysBALPEntity  = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	sysParticipant = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	// SystemAction names phivault's own action codes (the Action values)
	// where no standard code fits.
	SystemAction = "https://phivault.dev/fhir/CodeSystem/audit-action"
)

// restful maps FHIR interactions to (restful-interaction code, CRUDE action).
var restful = map[Action][2]string{
	ActionRead:          {"read", "R"},
	ActionVRead:         {"vread", "R"},
	ActionSearch:        {"search-type", "E"},
	ActionHistory:       {"history-instance", "R"},
	ActionHistoryType:   {"history-type", "R"},
	ActionHistorySystem: {"history-system", "R"},
	ActionCapabilities:  {"capabilities", "R"},
	ActionCreate:        {"create", "C"},
	ActionUpdate:        {"update", "U"},
	ActionDelete:        {"delete", "D"},
	ActionTransaction:   {"transaction", "E"},
	ActionBatch:         {"batch", "E"},
	ActionEverything:    {"operation", "E"},
	ActionBulkExport:    {"operation", "E"},
	ActionErase:         {"operation", "D"},
}

// authEvents are the DICOM "User Authentication" (110114) events with
// their subtype: 110122 Login, 110123 Logout.
var authEvents = map[Action]string{
	ActionLogin:         "110122",
	ActionLoginPassword: "110122",
	ActionMFAVerify:     "110122",
	ActionSSOLogin:      "110122",
	ActionLockout:       "110122",
	ActionLogout:        "110123",
}

// ActionCode returns the FHIR AuditEvent.action code of an action: C,
// R, U, D or E (http://hl7.org/fhir/audit-event-action).
func ActionCode(a Action) string {
	if r, ok := restful[a]; ok {
		return r[1]
	}
	return "E"
}

// AuditEvent renders e as a FHIR R4 AuditEvent resource following the
// IHE BALP patterns: type "rest" with the RESTful interaction as subtype
// for FHIR interactions, DICOM "User Authentication" for sign-in and
// sign-out, DICOM "Application Activity" with phivault's action code for
// the rest; the agent with its role, client, session and network
// address; every patient touched as a Patient entity (object role 1),
// every resource as a System Object entity; the searched parameter names
// as the query entity; the request id as the BALP XrequestId entity;
// the purpose of use; and the policies that decided as agent.policy.
// id is the resource id to give it (its position in the log).
func (e Event) AuditEvent(id string) map[string]any {
	ae := map[string]any{
		"resourceType": "AuditEvent",
		"id":           id,
		"recorded":     e.Time.UTC().Format(time.RFC3339Nano),
		"outcome":      outcomeCode(e.Outcome),
		"source": map[string]any{
			"observer": map[string]any{"display": "phivault"},
			"type":     []any{coding(sysSourceType, "4", "Application Server")},
		},
	}
	if r, ok := restful[e.Action]; ok {
		ae["type"] = coding(sysEventType, "rest", "RESTful Operation")
		ae["subtype"] = []any{coding(sysRESTful, r[0], "")}
		if r[0] == "operation" {
			ae["subtype"] = []any{coding(sysRESTful, "operation", ""), coding(SystemAction, string(e.Action), "")}
		}
	} else if sub, ok := authEvents[e.Action]; ok {
		ae["type"] = coding(sysDICOM, "110114", "User Authentication")
		ae["subtype"] = []any{coding(sysDICOM, sub, map[string]string{"110122": "Login", "110123": "Logout"}[sub]), coding(SystemAction, string(e.Action), "")}
	} else {
		ae["type"] = coding(sysDICOM, "110100", "Application Activity")
		ae["subtype"] = []any{coding(SystemAction, string(e.Action), "")}
	}
	ae["action"] = ActionCode(e.Action)
	if e.Outcome != OutcomeSuccess && e.Outcome != "" {
		ae["outcomeDesc"] = string(e.Outcome)
	}
	if e.Purpose != "" {
		ae["purposeOfEvent"] = []any{map[string]any{"coding": []any{coding(sysPurpose, e.Purpose, "")}}}
	}
	ae["agent"] = e.agents()
	if ents := e.entities(); len(ents) > 0 {
		ae["entity"] = ents
	}
	return ae
}

func (e Event) agents() []any {
	who := e.Agent.User
	if who == "" {
		who = "unknown"
	}
	user := map[string]any{
		"requestor": true,
		"who":       map[string]any{"identifier": map[string]any{"system": "https://phivault.dev/fhir/sid/user", "value": who}},
	}
	if e.Agent.Role != "" {
		user["role"] = []any{map[string]any{"coding": []any{coding("https://phivault.dev/fhir/CodeSystem/role", e.Agent.Role, "")}}}
	}
	if e.Agent.Session != "" {
		user["altId"] = "session:" + e.Agent.Session
	}
	if e.Agent.Address != "" {
		user["network"] = map[string]any{"address": e.Agent.Address, "type": "2"}
	}
	if len(e.Policies) > 0 {
		ps := make([]any, len(e.Policies))
		for i, p := range e.Policies {
			ps[i] = p
		}
		user["policy"] = ps
	}
	out := []any{user}
	if e.Agent.Client != "" {
		out = append(out, map[string]any{
			"requestor": false,
			"type":      map[string]any{"coding": []any{coding(sysParticipant, "dataprocessor", "data processor")}},
			"who":       map[string]any{"identifier": map[string]any{"system": "https://phivault.dev/fhir/sid/client", "value": e.Agent.Client}},
		})
	}
	return out
}

func (e Event) entities() []any {
	var out []any
	for _, p := range e.Patients {
		out = append(out, map[string]any{
			"what": map[string]any{"reference": p},
			"type": coding(sysEntityType, "1", "Person"),
			"role": coding(sysObjectRole, "1", "Patient"),
		})
	}
	for _, r := range e.Entities {
		// "Type/id/_history/v" is a valid FHIR versioned reference.
		out = append(out, map[string]any{
			"what": map[string]any{"reference": r},
			"type": coding(sysEntityType, "2", "System Object"),
			"role": coding(sysObjectRole, "4", "Domain Resource"),
		})
	}
	if e.Query != "" {
		out = append(out, map[string]any{
			"type":  coding(sysEntityType, "2", "System Object"),
			"role":  coding(sysObjectRole, "24", "Query"),
			"query": base64.StdEncoding.EncodeToString([]byte(e.Query)),
		})
	}
	if e.RequestID != "" {
		out = append(out, map[string]any{
			"what": map[string]any{"identifier": map[string]any{"value": e.RequestID}},
			"type": coding(sysBALPEntity, "XrequestId", "X-Request-Id"),
		})
	}
	return out
}

// outcomeCode maps an outcome to the R4 AuditEvent.outcome codes: 0
// success, 4 minor failure (a denial), 8 serious failure (an error).
func outcomeCode(o Outcome) string {
	switch o {
	case OutcomeDenied:
		return "4"
	case OutcomeError:
		return "8"
	}
	return "0"
}

func coding(system, code, display string) map[string]any {
	c := map[string]any{"system": system, "code": code}
	if display = strings.TrimSpace(display); display != "" {
		c["display"] = display
	}
	return c
}
