package record

import (
	"cmp"
	"context"
	"slices"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
)

// events are the audit events of one request that returns several
// resources (search, history, $everything): one per purpose of use,
// because a purpose is recorded only for the decisions made under it. A
// clinician's search that returns one patient under a break-the-glass
// grant (ETREAT) and another through the care team (TREAT) leaves two
// events, and the second patient's record never shows an emergency
// access.
type events struct {
	base  audit.Event
	by    map[string]*audit.Event
	order []string
	pols  map[string]map[string]bool // purpose -> policies
	full  []audit.Event              // events that reached maxEntitiesPerEvent
}

// maxEntitiesPerEvent bounds the resources one event names, so that an
// event stays well under the 64 KiB a C2SP entry bundle holds per entry
// (a search of 1,000 resources leaves four events): about 100 bytes an
// entity with its patient, at most.
const maxEntitiesPerEvent = 256

func newEvents(base audit.Event) *events {
	return &events{base: base, by: map[string]*audit.Event{}, pols: map[string]map[string]bool{}}
}

// add records one returned resource decided by d. A resource naming
// several patients that a break-the-glass grant opened for some of them
// only (d.Emergency) is filed under ETREAT for those and under the
// ordinary purpose for the others: no patient's trail shows another's
// emergency.
func (e *events) add(d authz.Decision, entity string, patients []string) {
	if d.Purpose != "" && len(d.Emergency) > 0 && len(d.Emergency) < len(patients) {
		var others []string
		for _, p := range patients {
			if !slices.Contains(d.Emergency, p) {
				others = append(others, p)
			}
		}
		ordinary := d
		ordinary.Purpose, ordinary.Emergency = "", nil
		e.add(ordinary, entity, others)
		emergency := d
		emergency.Emergency = nil
		e.add(emergency, entity, d.Emergency)
		return
	}
	p := cmp.Or(d.Purpose, e.base.Purpose)
	ev, ok := e.by[p]
	if ok && len(ev.Entities) >= maxEntitiesPerEvent {
		done := *ev
		slices.Sort(done.Policies)
		e.full = append(e.full, done)
		delete(e.by, p)
		e.order = slices.DeleteFunc(e.order, func(x string) bool { return x == p })
		ok = false
	}
	if !ok {
		c := e.base
		c.Purpose = p
		c.Entities, c.Compartments = nil, nil
		c.Patients = slices.Clone(e.base.Patients)
		c.Policies = slices.Clone(e.base.Policies)
		ev = &c
		e.by[p] = ev
		e.order = append(e.order, p)
		e.pols[p] = map[string]bool{}
		for _, id := range c.Policies {
			e.pols[p][id] = true
		}
	}
	// Touch links the entity to its patients: each patient's view of
	// the event shows only their own resources (audit.PatientView).
	ev.Touch(entity, patients...)
	for _, id := range d.Policies {
		if !e.pols[p][id] {
			e.pols[p][id] = true
			ev.Policies = append(ev.Policies, id)
		}
	}
}

// list returns the events: the base event alone when nothing was added.
func (e *events) list() []audit.Event {
	if len(e.order) == 0 && len(e.full) == 0 {
		return []audit.Event{e.base}
	}
	out := slices.Clone(e.full)
	for _, p := range e.order {
		ev := *e.by[p]
		slices.Sort(ev.Policies)
		out = append(out, ev)
	}
	return out
}

// recordReads makes every event durable before the caller returns PHI.
func (s *Service) recordReads(ctx context.Context, evs ...audit.Event) error {
	for _, ev := range evs {
		if err := s.recordRead(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
