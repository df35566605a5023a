package fhirctx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

// builder collects resources; references are resolved in finish, once
// every fullUrl and PractitionerRole is known.
type builder struct {
	dir      *monitor.Directory
	fullURLs map[string]string // fullUrl -> "Type/id"
	roles    map[string]string // "PractitionerRole/<id>" (raw ref) -> raw practitioner ref
	roleOrg  map[string]string // role -> raw organization ref
	people   []pendingRole
	rels     []pendingRelation
	partOf   map[string]string // org -> raw partOf
	patients map[string]*monitor.PatientInfo
	pracs    map[string]*monitor.Person
}

type pendingRole struct {
	prac string // raw
	role monitor.Role
}

type pendingRelation struct {
	patient string // raw
	rel     monitor.Relation
}

func newBuilder() *builder {
	return &builder{
		dir:      monitor.NewDirectory(),
		fullURLs: map[string]string{},
		roles:    map[string]string{},
		roleOrg:  map[string]string{},
		partOf:   map[string]string{},
		patients: map[string]*monitor.PatientInfo{},
		pracs:    map[string]*monitor.Person{},
	}
}

// maxID bounds a resource id (FHIR: 64 characters).
const maxID = 64

var errBadID = errors.New("a resource id is missing or not a FHIR id")

// validID is FHIR's id rule: [A-Za-z0-9\-\.]{1,64}.
func validID(id string) bool {
	if id == "" || len(id) > maxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// add records one entry and returns its type, or "" when skipped.
func (b *builder) add(fullURL string, r resource) (string, error) {
	if !wanted[r.ResourceType] {
		return "", nil
	}
	if !validID(r.ID) {
		return "", fmt.Errorf("%s: %w", r.ResourceType, errBadID)
	}
	self := r.ResourceType + "/" + r.ID
	if fullURL != "" {
		b.fullURLs[fullURL] = self
	}
	switch r.ResourceType {
	case "Organization":
		b.dir.Departments[self] = monitor.Department{Ref: self, Name: r.Name.Text}
		if r.PartOf.Reference != "" {
			b.partOf[self] = r.PartOf.Reference
		}
	case "Practitioner":
		p := &monitor.Person{Ref: self, BirthDate: r.BirthDate, Addresses: addresses(r.Address)}
		p.Family, p.Given = name(r.Name.Humans)
		b.pracs[self] = p
	case "Patient":
		p := &monitor.PatientInfo{Ref: self, BirthDate: r.BirthDate, Addresses: addresses(r.Address)}
		p.Family, p.Given = name(r.Name.Humans)
		for _, c := range r.Meta.Security {
			if c.Code != "" && !slices.Contains(p.Labels, c.Code) {
				p.Labels = append(p.Labels, c.Code)
			}
		}
		b.patients[self] = p
	case "PractitionerRole":
		if r.Active != nil && !*r.Active {
			return r.ResourceType, nil
		}
		role := monitor.Role{Ref: self, Codes: codes(r.Code...), Specialties: codes(r.Specialty...)}
		role.Organization = r.Organization.Reference // resolved in finish
		for _, at := range r.AvailableTime {
			if s, ok := shift(at); ok {
				role.Shifts = append(role.Shifts, s)
			}
		}
		b.roles[self] = r.Practitioner.Reference
		b.roleOrg[self] = r.Organization.Reference
		b.people = append(b.people, pendingRole{prac: r.Practitioner.Reference, role: role})
	case "Encounter":
		rel := monitor.Relation{Kind: monitor.RelEncounter, Ref: self,
			Start: parseTime(r.Period.Start, false), End: parseTime(r.Period.End, true)}
		rel.Organizations = appendRef(rel.Organizations, r.ServiceProvider.Reference)
		b.relateParticipants(r.Subject, rel, r.Participant, func(p participant) string { return p.Individual.Reference })
	case "CareTeam":
		rel := monitor.Relation{Kind: monitor.RelCareTeam, Ref: self,
			Start: parseTime(r.Period.Start, false), End: parseTime(r.Period.End, true)}
		for _, o := range r.ManagingOrganization {
			rel.Organizations = appendRef(rel.Organizations, o.Reference)
		}
		b.relateParticipants(r.Subject, rel, r.Participant, func(p participant) string { return p.Member.Reference })
	case "ServiceRequest":
		rel := monitor.Relation{Kind: monitor.RelOrder, Ref: self, Codes: codes(r.PerformerType)}
		for _, p := range r.Performer {
			rel.Participants = append(rel.Participants, p.Reference)
		}
		switch {
		case r.OccurrencePeriod.Start != "" || r.OccurrencePeriod.End != "":
			rel.Start, rel.End = parseTime(r.OccurrencePeriod.Start, false), parseTime(r.OccurrencePeriod.End, true)
		case r.OccurrenceDateTime != "":
			rel.Start, rel.End = parseTime(r.OccurrenceDateTime, false), parseTime(r.OccurrenceDateTime, true)
		case r.AuthoredOn != "":
			rel.Start = parseTime(r.AuthoredOn, false)
		}
		b.relate(r.Subject, rel)
	case "Claim":
		rel := monitor.Relation{Kind: monitor.RelBilling, Ref: self,
			Start: parseTime(r.BillablePeriod.Start, false), End: parseTime(r.BillablePeriod.End, true)}
		if rel.Start.IsZero() {
			rel.Start = parseTime(r.Created, false)
		}
		rel.Participants = append(rel.Participants, r.Provider.Reference)
		b.relate(subjects{r.Patient}, rel)
	case "Account":
		rel := monitor.Relation{Kind: monitor.RelBilling, Ref: self,
			Start: parseTime(r.ServicePeriod.Start, false), End: parseTime(r.ServicePeriod.End, true)}
		rel.Participants = append(rel.Participants, r.Owner.Reference)
		b.relate(r.Subject, rel)
	}
	return r.ResourceType, nil
}

func (b *builder) relate(subj subjects, rel monitor.Relation) {
	for _, s := range subj {
		if s.Reference != "" {
			b.rels = append(b.rels, pendingRelation{patient: s.Reference, rel: rel})
		}
	}
}

// relateParticipants records rel with the participants that took part
// for all of it; a participant with a period of their own (a nurse
// covering one shift of a stay) gets a relation of their own bounded by
// that period, without the relation's organizations (the cover does
// not make the department treat the patient at other times).
func (b *builder) relateParticipants(subj subjects, rel monitor.Relation, ps []participant, who func(participant) string) {
	for _, p := range ps {
		if p.Period.Start == "" && p.Period.End == "" {
			rel.Participants = append(rel.Participants, who(p))
			continue
		}
		own := monitor.Relation{Kind: rel.Kind, Ref: rel.Ref, Participants: []string{who(p)},
			Start: parseTime(p.Period.Start, false), End: parseTime(p.Period.End, true)}
		if own.Start.IsZero() {
			own.Start = rel.Start
		}
		if own.End.IsZero() {
			own.End = rel.End
		}
		b.relate(subj, own)
	}
	b.relate(subj, rel)
}

func appendRef(refs []string, r string) []string {
	if r == "" {
		return refs
	}
	return append(refs, r)
}

// finish resolves every reference and returns the directory.
func (b *builder) finish() *monitor.Directory {
	d := b.dir
	for org, parent := range b.partOf {
		dep := d.Departments[org]
		dep.PartOf = b.resolve(parent, "Organization")
		d.Departments[org] = dep
	}
	for ref, p := range b.pracs {
		d.Practitioners[ref] = p
	}
	for ref, p := range b.patients {
		d.Patients[ref] = p
	}
	for _, pr := range b.people {
		prac := b.resolve(pr.prac, "Practitioner")
		p := d.Practitioners[prac]
		if p == nil {
			if prac == "" {
				continue
			}
			p = &monitor.Person{Ref: prac}
			d.Practitioners[prac] = p
		}
		pr.role.Organization = b.resolve(pr.role.Organization, "Organization")
		p.Roles = append(p.Roles, pr.role)
		d.RolePractitioner[pr.role.Ref] = prac
	}
	for _, pr := range b.rels {
		pat := b.resolve(pr.patient, "Patient")
		if pat == "" {
			continue
		}
		rel := pr.rel
		var people, orgs []string
		for _, raw := range rel.Participants {
			people, orgs = b.party(raw, people, orgs)
		}
		for _, raw := range rel.Organizations {
			if o := b.resolve(raw, "Organization"); o != "" && !slices.Contains(orgs, o) {
				orgs = append(orgs, o)
			}
		}
		rel.Participants, rel.Organizations = people, orgs
		d.Relations[pat] = append(d.Relations[pat], rel)
	}
	return d
}

// party resolves a participant: a Practitioner, a PractitionerRole (its
// practitioner and organization), or an Organization.
func (b *builder) party(raw string, people, orgs []string) ([]string, []string) {
	add := func(list []string, v string) []string {
		if v == "" || slices.Contains(list, v) {
			return list
		}
		return append(list, v)
	}
	ref := b.resolve(raw, "")
	switch {
	case strings.HasPrefix(ref, "Practitioner/"):
		people = add(people, ref)
	case strings.HasPrefix(ref, "PractitionerRole/"):
		people = add(people, b.resolve(b.roles[ref], "Practitioner"))
		orgs = add(orgs, b.resolve(b.roleOrg[ref], "Organization"))
	case strings.HasPrefix(ref, "Organization/"):
		orgs = add(orgs, ref)
	}
	return people, orgs
}

// resolve turns a raw reference into "Type/id": a fullUrl of the
// Bundle, a relative or absolute URL, with or without _history. want,
// when set, is the type it must have; "" otherwise.
func (b *builder) resolve(raw, want string) string {
	if raw == "" {
		return ""
	}
	if r, ok := b.fullURLs[raw]; ok {
		return typed(r, want)
	}
	s := raw
	if i := strings.Index(s, "/_history/"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 {
		return ""
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if !validID(id) || typ == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return ""
	}
	return typed(typ+"/"+id, want)
}

func typed(ref, want string) string {
	if want != "" && !strings.HasPrefix(ref, want+"/") {
		return ""
	}
	return ref
}

func name(ns []humanName) (family string, given []string) {
	best := -1
	for i, n := range ns {
		if n.Use == "official" || n.Use == "usual" {
			best = i
			break
		}
		if best < 0 && n.Use != "old" {
			best = i
		}
	}
	if best < 0 {
		return "", nil
	}
	return ns[best].Family, ns[best].Given
}

func addresses(as []address) []monitor.Address {
	var out []monitor.Address
	for _, a := range as {
		if a.Use == "old" {
			continue
		}
		out = append(out, monitor.Address{Line: strings.Join(a.Line, ", "), City: a.City, PostalCode: a.PostalCode})
	}
	return out
}

func codes(cs ...concept) []string {
	var out []string
	for _, c := range cs {
		for _, cd := range c.Coding {
			if cd.Code != "" && !slices.Contains(out, cd.Code) {
				out = append(out, cd.Code)
			}
		}
	}
	return out
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// shift reads one availableTime; false when its times are unreadable.
func shift(at availableTime) (monitor.Shift, bool) {
	s := monitor.Shift{AllDay: at.AllDay}
	for _, d := range at.DaysOfWeek {
		if w, ok := weekdays[d]; ok {
			s.Days = append(s.Days, w)
		}
	}
	if len(at.DaysOfWeek) > 0 && len(s.Days) == 0 {
		return s, false
	}
	if s.AllDay || (at.Start == "" && at.End == "") {
		s.AllDay = true
		return s, true
	}
	var ok1, ok2 bool
	s.Start, ok1 = clock(at.Start, 0)
	s.End, ok2 = clock(at.End, 24*time.Hour)
	return s, ok1 && ok2
}

// clock reads a FHIR time "hh:mm:ss"; empty is def.
func clock(v string, def time.Duration) (time.Duration, bool) {
	if v == "" {
		return def, true
	}
	t, err := time.Parse("15:04:05", v)
	if err != nil {
		if t, err = time.Parse("15:04", v); err != nil {
			return 0, false
		}
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, true
}
