package record

import (
	"context"
	"slices"

	"github.com/phivault/phivault/internal/audit"
)

// Purpose of use is recorded per decision (issue 11 item 14). A search
// or a history can return resources of several patients, some reached
// through the caller's ordinary relationship (TREAT) and some only
// through a break-the-glass grant (ETREAT). One event with one purpose
// would tell a patient on the care team that their record was opened in
// an emergency, or hide the emergency access to another. A
// purposeSplit keeps one event per purpose: each resource and patient
// goes to the event of the purpose its own decision used (the caller's
// default when the decision used none). An access that returned nothing
// is one event with the default purpose.

type purposeSplit struct {
	base   audit.Event // Action, Agent, Query, Policies, Outcome... and the default Purpose
	order  []string
	byPurp map[string]*audit.Event
	seen   map[string]bool // purpose + patient already listed
}

func newPurposeSplit(base audit.Event) *purposeSplit {
	return &purposeSplit{base: base, byPurp: map[string]*audit.Event{}, seen: map[string]bool{}}
}

// add files entity (and its patient, if any) under the purpose of the
// decision that let it through ("" for the default).
func (p *purposeSplit) add(purpose, entity, patient string) {
	if purpose == "" {
		purpose = p.base.Purpose
	}
	ev, ok := p.byPurp[purpose]
	if !ok {
		e := p.base
		e.Purpose = purpose
		e.Entities, e.Patients = nil, nil
		ev = &e
		p.byPurp[purpose] = ev
		p.order = append(p.order, purpose)
	}
	ev.Entities = append(ev.Entities, entity)
	if patient != "" && !p.seen[purpose+"\x00"+patient] {
		p.seen[purpose+"\x00"+patient] = true
		ev.Patients = append(ev.Patients, patient)
	}
}

// events returns the events to record: one per purpose met, or the base
// event when nothing was added.
func (p *purposeSplit) events() []audit.Event {
	if len(p.order) == 0 {
		return []audit.Event{p.base}
	}
	out := make([]audit.Event, 0, len(p.order))
	for _, k := range p.order {
		out = append(out, *p.byPurp[k])
	}
	return out
}

// record makes every event durable (fail closed on the first failure).
func (p *purposeSplit) record(ctx context.Context, s *Service) error {
	for _, ev := range p.events() {
		ev.Policies = slices.Clone(ev.Policies)
		if err := s.recordRead(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
