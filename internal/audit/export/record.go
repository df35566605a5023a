package export

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
)

// Record is one exported audit event: its leaf index in the Merkle tree
// (its position in the published log, which an inclusion proof names,
// and the id of its FHIR AuditEvent) and the event after redaction. It
// encodes as one flat JSON object, the event's fields plus "index".
type Record struct {
	Index int64 `json:"index"`
	audit.Event
}

// MarshalLine encodes r as one line of JSON without the newline.
func (r Record) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding leaf %d: %w", r.Index, err)
	}
	return b, nil
}

// Fields that a [Redaction] may remove, by their JSON names. "time",
// "action", "outcome" and "index" are what makes a record useful
// and are never removed.
var redactable = map[string]func(*audit.Event){
	"agent.user":    func(e *audit.Event) { e.Agent.User = "" },
	"agent.role":    func(e *audit.Event) { e.Agent.Role = "" },
	"agent.client":  func(e *audit.Event) { e.Agent.Client = "" },
	"agent.session": func(e *audit.Event) { e.Agent.Session = "" },
	"agent.address": func(e *audit.Event) { e.Agent.Address = "" },
	"purpose":       func(e *audit.Event) { e.Purpose = "" },
	"patients":      func(e *audit.Event) { e.Patients, e.Compartments = nil, nil },
	"entities":      func(e *audit.Event) { e.Entities, e.Compartments = nil, nil },
	"query":         func(e *audit.Event) { e.Query = "" },
	"policies":      func(e *audit.Event) { e.Policies = nil },
	"status":        func(e *audit.Event) { e.Status = 0 },
	"request_id":    func(e *audit.Event) { e.RequestID = "" },
}

// RedactableFields lists the field names [NewRedaction] accepts, sorted.
func RedactableFields() []string {
	names := make([]string, 0, len(redactable))
	for n := range redactable {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Redaction removes configured fields from events before they leave the
// server (for example the source address and patient references for a
// SIEM that must hold no identifiers). The zero value removes nothing.
type Redaction struct {
	fields []string
	apply  []func(*audit.Event)
}

// NewRedaction returns the redaction of the named fields, or an error
// naming the first unknown field and listing the valid ones.
func NewRedaction(fields []string) (Redaction, error) {
	var r Redaction
	for _, f := range fields {
		fn, ok := redactable[f]
		if !ok {
			return Redaction{}, fmt.Errorf("unknown redaction field %q (valid: %s)", f, strings.Join(RedactableFields(), ", "))
		}
		if slices.Contains(r.fields, f) {
			continue
		}
		r.fields = append(r.fields, f)
		r.apply = append(r.apply, fn)
	}
	return r, nil
}

// Fields returns the names of the fields r removes.
func (r Redaction) Fields() []string { return slices.Clone(r.fields) }

// Apply returns e without the redacted fields. It does not modify e's
// slices in place.
func (r Redaction) Apply(e audit.Event) audit.Event {
	for _, fn := range r.apply {
		fn(&e)
	}
	return e
}
