package monitor

import (
	"slices"
	"strings"
	"time"
)

// Explanation-based auditing (Fabbri and LeFevre, VLDB 2011): an access
// is explained when a path in the hospital's data links the user to the
// patient. The paths, from the strongest:
//
//   - the user (or one of their PractitionerRoles) is on the patient's
//     CareTeam, within its period;
//   - the user is a participant of one of the patient's Encounters,
//     within the encounter window;
//   - the user is named as performer of a ServiceRequest for the patient;
//   - the user is named on the patient's Claim or Account;
//   - the user acts for the department that provided an encounter
//     (serviceProvider, with partOf ancestry both ways below the root)
//     inside their rostered hours and within the encounter window;
//   - an order asks for the user's department (ServiceRequest.performer)
//     and, when it says, for a role the user holds there (performerType);
//     or, naming no performer, for a role the user holds; within the
//     order window;
//   - the user holds a billing role and the patient has a Claim or
//     Account;
//   - a break-the-glass grant (on the event, or a grant naming the user);
//   - the patient's own account (the user is the patient).
//
// The first four name the user and are strong; the others hold for
// anyone of a department or role, or are self-declared, and are weak:
// they lower a score less (ADR 0045).

// Encounter window. Work on an encounter starts before it (pre-admission
// and referral review) and goes on after it (discharge summaries,
// results, follow-up calls, coding): Fabbri and LeFevre count accesses
// near the encounter, Boxwala et al. use the encounter and the weeks
// after it. These bounds are ours, documented in ADR 0045.
const (
	WindowBefore = 3 * 24 * time.Hour
	WindowAfter  = 14 * 24 * time.Hour
	// BillingAfter is how long after a claim's or account's period
	// billing work goes on (claims, denials, appeals).
	BillingAfter = 60 * 24 * time.Hour
	// ShiftGrace is the slack around rostered hours: people come early
	// and hand over late.
	ShiftGrace = time.Hour
)

// Explanation strength.
type strength int

const (
	explNone strength = iota
	// explRelated: no path at the time of the access, but the patient
	// has one with the user's department at another time, or is treated
	// by a colleague of the user's department (Fabbri and LeFevre's
	// explanations through groups of users). Not an explanation; it
	// lowers the weight of a missing one.
	explRelated
	explWeak
	explStrong
	explSelf // the patient's own account: not a workforce access at all
)

// explanation is what was found for one access.
type explanation struct {
	strength strength
	found    string // "encounter Encounter/9 (participant)", refs only
	// glass: the only explanation is a break-the-glass grant, the
	// user's own word. It explains one access, not a pattern: the
	// behaviour detectors count such accesses as unexplained.
	glass bool
}

// billingCodes are role codes of billing staff (lower case). Sources use
// local codes; these are the usual ones.
var billingCodes = map[string]bool{
	"billing": true, "biller": true, "billing-clerk": true, "coder": true, "coding": true,
	"claims": true, "finance": true, "revenue-cycle": true, "him": true, "health-information-management": true,
}

func isBillingCode(c string) bool { return billingCodes[strings.ToLower(c)] }

// within reports whether t is inside [start-before, end+after], an open
// bound being unbounded.
func within(t, start, end time.Time, before, after time.Duration) bool {
	if !start.IsZero() && t.Before(start.Add(-before)) {
		return false
	}
	if !end.IsZero() && t.After(end.Add(after)) {
		return false
	}
	return true
}

// explain looks for the best explanation of one access of user (person
// may be nil when the directory does not know the user) to patient.
func (e *Engine) explain(user string, person *Person, ev *Event) explanation {
	best := explanation{}
	var glass explanation
	if ev.BreakGlass {
		glass = explanation{strength: explWeak, found: "break-the-glass grant on the access", glass: true}
	}
	rels := e.dir.Relations[ev.Patient]
	for i := range rels {
		r := &rels[i]
		s, why := e.explainBy(user, person, r, ev.Time)
		if r.Kind == RelBreakGlass {
			if s > glass.strength {
				glass = explanation{strength: s, found: why, glass: true}
			}
			continue
		}
		if s > best.strength {
			best = explanation{strength: s, found: why}
		}
		if best.strength == explSelf {
			break
		}
	}
	if glass.strength > best.strength {
		return glass
	}
	if best.strength == explNone && person != nil {
		if why := e.relatedAnyTime(user, person, rels); why != "" {
			best = explanation{strength: explRelated, found: why}
		}
	}
	return best
}

// relatedAnyTime looks for a relation of the patient with the user's
// department at any time, or with a colleague of that department.
func (e *Engine) relatedAnyTime(user string, p *Person, rels []Relation) string {
	for i := range rels {
		r := &rels[i]
		if r.Kind != RelEncounter && r.Kind != RelCareTeam && r.Kind != RelOrder {
			continue
		}
		if e.inDepartments(p, r.Organizations, time.Time{}, false) {
			return "the user's department has " + r.Ref + " at another time"
		}
		for _, who := range r.Participants {
			if who == user {
				return "the user is on " + r.Ref + " at another time"
			}
			if c := e.dir.Practitioners[who]; c != nil && e.sharesDepartment(p, c) {
				return "a colleague of the user's department is on " + r.Ref
			}
		}
	}
	return ""
}

func (e *Engine) names(user string, person *Person, who []string) bool {
	for _, w := range who {
		if w == user {
			return true
		}
		if person != nil {
			if w == person.Ref {
				return true
			}
			for _, r := range person.Roles {
				if r.Ref != "" && w == r.Ref {
					return true
				}
			}
		}
	}
	return false
}

func (e *Engine) explainBy(user string, p *Person, r *Relation, t time.Time) (strength, string) {
	switch r.Kind {
	case RelSelf:
		if e.names(user, p, r.Participants) {
			return explSelf, "the patient's own account"
		}
	case RelCareTeam:
		if !within(t, r.Start, r.End, 0, WindowAfter) {
			return explNone, ""
		}
		if e.names(user, p, r.Participants) {
			return explStrong, "care team " + r.Ref
		}
		if p != nil && e.inDepartments(p, r.Organizations, t, true) {
			return explWeak, "department of care team " + r.Ref
		}
	case RelEncounter:
		if !within(t, r.Start, r.End, WindowBefore, WindowAfter) {
			return explNone, ""
		}
		if e.names(user, p, r.Participants) {
			return explStrong, "participant of " + r.Ref
		}
		if p != nil && e.inDepartments(p, r.Organizations, t, true) {
			return explWeak, "department of " + r.Ref + " on shift"
		}
	case RelOrder:
		if !within(t, r.Start, r.End, WindowBefore, WindowAfter) {
			return explNone, ""
		}
		if e.names(user, p, r.Participants) {
			return explStrong, "performer of " + r.Ref
		}
		if p == nil {
			return explNone, ""
		}
		// performerType qualifies performer: an order to a department
		// for a role explains that role in that department, not every
		// holder of the role in the hospital; without a performer, the
		// role alone.
		if len(r.Organizations) > 0 {
			if e.inDepartmentsWithCode(p, r.Organizations, r.Codes) {
				return explWeak, "department asked by " + r.Ref
			}
			return explNone, ""
		}
		if len(r.Participants) > 0 {
			return explNone, "" // named people, the user not among them
		}
		for _, ro := range p.Roles {
			for _, c := range ro.Codes {
				if slices.Contains(r.Codes, c) {
					return explWeak, "role asked by " + r.Ref
				}
			}
		}
	case RelBilling:
		if !within(t, r.Start, r.End, WindowBefore, BillingAfter) {
			return explNone, ""
		}
		if e.names(user, p, r.Participants) {
			return explStrong, "named on " + r.Ref
		}
		if p == nil {
			return explNone, ""
		}
		for _, ro := range p.Roles {
			for _, c := range ro.Codes {
				if isBillingCode(c) {
					return explWeak, "billing role and " + r.Ref
				}
			}
		}
		if e.inDepartments(p, r.Organizations, t, false) {
			return explWeak, "department owning " + r.Ref
		}
	case RelBreakGlass:
		if within(t, r.Start, r.End, 0, 0) && e.names(user, p, r.Participants) {
			return explWeak, "break-the-glass grant " + r.Ref
		}
	}
	return explNone, ""
}

// inDepartments reports whether one of p's roles acts for one of orgs
// (or a department above or below it, the root excepted); with
// onShift, only a role whose rostered hours hold t counts.
func (e *Engine) inDepartments(p *Person, orgs []string, t time.Time, onShift bool) bool {
	if len(orgs) == 0 {
		return false
	}
	for i := range p.Roles {
		ro := &p.Roles[i]
		if ro.Organization == "" {
			continue
		}
		for _, o := range orgs {
			if e.relatedOrgs(ro.Organization, o) && (!onShift || e.roleOnShift(ro, t)) {
				return true
			}
		}
	}
	return false
}

// inDepartmentsWithCode reports whether one of p's roles acts for one
// of orgs and, when codes are given, holds one of them.
func (e *Engine) inDepartmentsWithCode(p *Person, orgs, codes []string) bool {
	for i := range p.Roles {
		ro := &p.Roles[i]
		if ro.Organization == "" {
			continue
		}
		if len(codes) > 0 && !slices.ContainsFunc(ro.Codes, func(c string) bool { return slices.Contains(codes, c) }) {
			continue
		}
		for _, o := range orgs {
			if e.relatedOrgs(ro.Organization, o) {
				return true
			}
		}
	}
	return false
}

// relatedOrgs reports whether a and b are the same department, or one
// is an ancestor of the other (partOf) and that ancestor is not a root
// of the hierarchy (the hospital: every department descends from it).
func (e *Engine) relatedOrgs(a, b string) bool {
	if a == b {
		return true
	}
	return e.isBelow(a, b) || e.isBelow(b, a)
}

// isBelow reports whether child descends from anc and anc has a parent.
func (e *Engine) isBelow(child, anc string) bool {
	if d, ok := e.dir.Departments[anc]; !ok || d.PartOf == "" {
		return false
	}
	cur := child
	for range 16 { // a hierarchy deeper than this is a loop
		d, ok := e.dir.Departments[cur]
		if !ok || d.PartOf == "" {
			return false
		}
		if d.PartOf == anc {
			return true
		}
		cur = d.PartOf
	}
	return false
}

// sharesDepartment reports whether two people act for related departments.
func (e *Engine) sharesDepartment(a, b *Person) bool {
	for _, ra := range a.Roles {
		if ra.Organization == "" {
			continue
		}
		for _, rb := range b.Roles {
			if rb.Organization != "" && e.relatedOrgs(ra.Organization, rb.Organization) {
				return true
			}
		}
	}
	return false
}

// roleOnShift reports whether t is inside a role's rostered hours
// (with [ShiftGrace]); a role without a roster is always on shift.
func (e *Engine) roleOnShift(r *Role, t time.Time) bool {
	if len(r.Shifts) == 0 {
		return true
	}
	lt := e.local(t)
	for _, s := range r.Shifts {
		if shiftHolds(s, lt) {
			return true
		}
	}
	return false
}

// hasRoster reports whether any of p's roles has rostered hours.
func hasRoster(p *Person) bool {
	for _, r := range p.Roles {
		if len(r.Shifts) > 0 {
			return true
		}
	}
	return false
}

// onShift reports whether t is inside any of p's rostered hours; true
// when p has none.
func (e *Engine) onShift(p *Person, t time.Time) bool {
	if p == nil || !hasRoster(p) {
		return true
	}
	for i := range p.Roles {
		if len(p.Roles[i].Shifts) > 0 && e.roleOnShift(&p.Roles[i], t) {
			return true
		}
	}
	return false
}

// shiftHolds checks t (local time) against one shift with grace. A shift
// that wraps past midnight belongs to the day it starts.
func shiftHolds(s Shift, lt time.Time) bool {
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, lt.Location())
	// Try the shift starting today and the one that started yesterday.
	for _, back := range [2]int{0, -1} {
		day := midnight.AddDate(0, 0, back)
		if len(s.Days) > 0 && !slices.Contains(s.Days, day.Weekday()) {
			continue
		}
		var from, to time.Time
		if s.AllDay {
			from, to = day, day.AddDate(0, 0, 1)
		} else {
			from = day.Add(s.Start)
			end := s.End
			if end <= s.Start {
				end += 24 * time.Hour
			}
			to = day.Add(end)
		}
		if !lt.Before(from.Add(-ShiftGrace)) && !lt.After(to.Add(ShiftGrace)) {
			return true
		}
	}
	return false
}
