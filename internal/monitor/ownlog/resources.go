package ownlog

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor"
)

// The parts of FHIR R4 resources the directory is built from. Unknown
// fields are ignored; a resource that does not decode is skipped by the
// caller (it explains nothing).

type fhirRef struct {
	Reference string `json:"reference"`
}

type fhirCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type fhirConcept struct {
	Coding []fhirCoding `json:"coding"`
}

type fhirPeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type fhirName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type fhirAddress struct {
	Line       []string `json:"line"`
	City       string   `json:"city"`
	PostalCode string   `json:"postalCode"`
}

type fhirPerson struct {
	Name      []fhirName    `json:"name"`
	BirthDate string        `json:"birthDate"`
	Address   []fhirAddress `json:"address"`
	Meta      struct {
		Security []fhirCoding `json:"security"`
	} `json:"meta"`
}

type fhirOrganization struct {
	Name   string  `json:"name"`
	PartOf fhirRef `json:"partOf"`
}

type fhirAvailable struct {
	DaysOfWeek         []string `json:"daysOfWeek"`
	AllDay             bool     `json:"allDay"`
	AvailableStartTime string   `json:"availableStartTime"`
	AvailableEndTime   string   `json:"availableEndTime"`
}

type fhirPractitionerRole struct {
	Active        *bool           `json:"active"`
	Practitioner  fhirRef         `json:"practitioner"`
	Organization  fhirRef         `json:"organization"`
	Code          []fhirConcept   `json:"code"`
	Specialty     []fhirConcept   `json:"specialty"`
	AvailableTime []fhirAvailable `json:"availableTime"`
}

type fhirEncounter struct {
	Participant []struct {
		Individual fhirRef     `json:"individual"`
		Period     *fhirPeriod `json:"period"`
	} `json:"participant"`
	Period          *fhirPeriod `json:"period"`
	ServiceProvider fhirRef     `json:"serviceProvider"`
}

type fhirCareTeam struct {
	Period      *fhirPeriod `json:"period"`
	Participant []struct {
		Member     fhirRef `json:"member"`
		OnBehalfOf fhirRef `json:"onBehalfOf"`
	} `json:"participant"`
	ManagingOrganization []fhirRef `json:"managingOrganization"`
}

type fhirServiceRequest struct {
	Requester          fhirRef      `json:"requester"`
	Performer          []fhirRef    `json:"performer"`
	PerformerType      *fhirConcept `json:"performerType"`
	OccurrenceDateTime string       `json:"occurrenceDateTime"`
	OccurrencePeriod   *fhirPeriod  `json:"occurrencePeriod"`
	AuthoredOn         string       `json:"authoredOn"`
}

type fhirClaim struct {
	Provider       fhirRef     `json:"provider"`
	Enterer        fhirRef     `json:"enterer"`
	BillablePeriod *fhirPeriod `json:"billablePeriod"`
	Created        string      `json:"created"`
	CareTeam       []struct {
		Provider fhirRef `json:"provider"`
	} `json:"careTeam"`
}

type fhirAccount struct {
	Owner         fhirRef     `json:"owner"`
	ServicePeriod *fhirPeriod `json:"servicePeriod"`
}

// RelationTypes are the resource types of a patient's compartment that
// can explain an access, in the order they are read.
var RelationTypes = []string{"Encounter", "CareTeam", "ServiceRequest", "Claim", "Account"}

// person decodes a Practitioner or Patient: the official (else first)
// name, the birth date, the addresses, the security labels.
func person(body []byte) (family string, given []string, birth string, addrs []monitor.Address, labels []string, err error) {
	var p fhirPerson
	if err := json.Unmarshal(body, &p); err != nil {
		return "", nil, "", nil, nil, err
	}
	if len(p.Name) > 0 {
		n := p.Name[0]
		for _, x := range p.Name {
			if x.Use == "official" {
				n = x
				break
			}
		}
		family, given = n.Family, n.Given
	}
	for _, a := range p.Address {
		addrs = append(addrs, monitor.Address{Line: strings.Join(a.Line, ", "), City: a.City, PostalCode: a.PostalCode})
	}
	for _, s := range p.Meta.Security {
		labels = append(labels, s.Code)
	}
	return family, given, p.BirthDate, addrs, labels, nil
}

// Practitioner decodes a Practitioner into a Person without roles.
func Practitioner(id string, body []byte) (*monitor.Person, error) {
	family, given, birth, addrs, _, err := person(body)
	if err != nil {
		return nil, fmt.Errorf("decoding Practitioner: %w", err)
	}
	return &monitor.Person{Ref: ident.RefTo("Practitioner", id).String(), Family: family, Given: given, BirthDate: birth, Addresses: addrs}, nil
}

// Patient decodes a Patient.
func Patient(id string, body []byte) (*monitor.PatientInfo, error) {
	family, given, birth, addrs, labels, err := person(body)
	if err != nil {
		return nil, fmt.Errorf("decoding Patient: %w", err)
	}
	return &monitor.PatientInfo{Ref: ident.PatientRef(id).String(), Family: family, Given: given, BirthDate: birth, Addresses: addrs, Labels: labels}, nil
}

// Organization decodes an Organization into a Department.
func Organization(id string, body []byte) (monitor.Department, error) {
	var o fhirOrganization
	if err := json.Unmarshal(body, &o); err != nil {
		return monitor.Department{}, fmt.Errorf("decoding Organization: %w", err)
	}
	return monitor.Department{Ref: ident.RefTo("Organization", id).String(), Name: o.Name, PartOf: localRef(o.PartOf.Reference, "Organization")}, nil
}

// PractitionerRole decodes a PractitionerRole: the practitioner it is
// of, and the role; active is false for a role marked inactive.
func PractitionerRole(id string, body []byte) (practitioner string, role monitor.Role, active bool, err error) {
	var r fhirPractitionerRole
	if err := json.Unmarshal(body, &r); err != nil {
		return "", monitor.Role{}, false, fmt.Errorf("decoding PractitionerRole: %w", err)
	}
	role = monitor.Role{Ref: ident.RefTo("PractitionerRole", id).String(), Organization: localRef(r.Organization.Reference, "Organization")}
	for _, c := range r.Code {
		role.Codes = append(role.Codes, codes(c)...)
	}
	for _, c := range r.Specialty {
		role.Specialties = append(role.Specialties, codes(c)...)
	}
	for _, a := range r.AvailableTime {
		if sh, ok := shift(a); ok {
			role.Shifts = append(role.Shifts, sh)
		}
	}
	return localRef(r.Practitioner.Reference, "Practitioner"), role, r.Active == nil || *r.Active, nil
}

// Relation decodes a resource of RelationTypes into the relation it
// holds; ok is false for another type. Participants may name
// PractitionerRoles: the caller resolves them to their practitioners.
func Relation(typ, id string, body []byte) (rel monitor.Relation, ok bool, err error) {
	rel.Ref = ident.RefTo(typ, id).String()
	add := func(refs ...string) {
		for _, r := range refs {
			if x, ok := ident.ParseRef(r); ok {
				switch x.Type {
				case "Practitioner", "PractitionerRole":
					rel.Participants = appendNew(rel.Participants, x.String())
				case "Organization":
					rel.Organizations = appendNew(rel.Organizations, x.String())
				}
			}
		}
	}
	switch typ {
	case "Encounter":
		var e fhirEncounter
		if err := json.Unmarshal(body, &e); err != nil {
			return rel, false, fmt.Errorf("decoding Encounter: %w", err)
		}
		rel.Kind = monitor.RelEncounter
		for _, p := range e.Participant {
			add(p.Individual.Reference)
		}
		add(e.ServiceProvider.Reference)
		rel.Start, rel.End = span(e.Period)
	case "CareTeam":
		var c fhirCareTeam
		if err := json.Unmarshal(body, &c); err != nil {
			return rel, false, fmt.Errorf("decoding CareTeam: %w", err)
		}
		rel.Kind = monitor.RelCareTeam
		for _, p := range c.Participant {
			add(p.Member.Reference, p.OnBehalfOf.Reference)
		}
		for _, o := range c.ManagingOrganization {
			add(o.Reference)
		}
		rel.Start, rel.End = span(c.Period)
	case "ServiceRequest":
		var s fhirServiceRequest
		if err := json.Unmarshal(body, &s); err != nil {
			return rel, false, fmt.Errorf("decoding ServiceRequest: %w", err)
		}
		rel.Kind = monitor.RelOrder
		add(s.Requester.Reference)
		for _, p := range s.Performer {
			add(p.Reference)
		}
		if s.PerformerType != nil {
			rel.Codes = codes(*s.PerformerType)
		}
		switch {
		case s.OccurrencePeriod != nil:
			rel.Start, rel.End = span(s.OccurrencePeriod)
		case s.OccurrenceDateTime != "":
			rel.Start, _ = fhir.ParseDateTime(s.OccurrenceDateTime, false)
		case s.AuthoredOn != "":
			rel.Start, _ = fhir.ParseDateTime(s.AuthoredOn, false)
		}
	case "Claim":
		var c fhirClaim
		if err := json.Unmarshal(body, &c); err != nil {
			return rel, false, fmt.Errorf("decoding Claim: %w", err)
		}
		rel.Kind = monitor.RelBilling
		add(c.Provider.Reference, c.Enterer.Reference)
		for _, p := range c.CareTeam {
			add(p.Provider.Reference)
		}
		rel.Start, rel.End = span(c.BillablePeriod)
	case "Account":
		var a fhirAccount
		if err := json.Unmarshal(body, &a); err != nil {
			return rel, false, fmt.Errorf("decoding Account: %w", err)
		}
		rel.Kind = monitor.RelBilling
		add(a.Owner.Reference)
		rel.Start, rel.End = span(a.ServicePeriod)
	default:
		return rel, false, nil
	}
	return rel, true, nil
}

// localRef is ref when it is a local reference to typ, else "".
func localRef(ref, typ string) string {
	if r, ok := ident.ParseRef(ref); ok && r.Type == typ {
		return r.String()
	}
	return ""
}

func codes(c fhirConcept) []string {
	var out []string
	for _, x := range c.Coding {
		if x.Code != "" {
			out = append(out, x.Code)
		}
	}
	return out
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// shift decodes an availableTime; ok is false for one that names no
// hours and is not all day.
func shift(a fhirAvailable) (monitor.Shift, bool) {
	var s monitor.Shift
	for _, d := range a.DaysOfWeek {
		if w, ok := weekdays[d]; ok {
			s.Days = append(s.Days, w)
		}
	}
	if a.AllDay {
		s.AllDay = true
		return s, true
	}
	start, ok1 := clock(a.AvailableStartTime)
	end, ok2 := clock(a.AvailableEndTime)
	if !ok1 || !ok2 {
		return s, false
	}
	s.Start, s.End = start, end
	return s, true
}

// clock parses a FHIR time (hh:mm:ss) into a duration since midnight.
func clock(s string) (time.Duration, bool) {
	t, err := time.Parse("15:04:05", s)
	if err != nil {
		if t, err = time.Parse("15:04", s); err != nil {
			return 0, false
		}
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, true
}

// span is a period's bounds (zero for an open or unparseable end).
func span(p *fhirPeriod) (start, end time.Time) {
	if p == nil {
		return time.Time{}, time.Time{}
	}
	start, _ = fhir.ParseDateTime(p.Start, false)
	end, _ = fhir.ParseDateTime(p.End, true)
	return start, end
}
