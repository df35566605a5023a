package monitor

import "time"

// Directory is the hospital's directory and care relationships: the
// context against which accesses are explained. Every reference is
// "Type/<id>". Build it with [NewDirectory] and the Add methods, or with
// the context Bundle parser (internal/monitor/fhirctx).
type Directory struct {
	Departments   map[string]Department   // "Organization/<id>"
	Practitioners map[string]*Person      // "Practitioner/<id>"
	Patients      map[string]*PatientInfo // "Patient/<id>"
	// Relations are each patient's care relationships, by patient.
	Relations map[string][]Relation
	// Accounts maps a source's account id ("User/<id>") to the
	// Practitioner it is, when the source's accounts are not
	// Practitioners themselves (phivault's own log).
	Accounts map[string]string
	// RolePractitioner maps "PractitionerRole/<id>" to the Practitioner
	// whose role it is (events may name a user by role).
	RolePractitioner map[string]string
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory {
	return &Directory{
		Departments:   map[string]Department{},
		Practitioners: map[string]*Person{},
		Patients:      map[string]*PatientInfo{},
		Relations:     map[string][]Relation{},
		Accounts:      map[string]string{},

		RolePractitioner: map[string]string{},
	}
}

// Department is an Organization of the hospital.
type Department struct {
	Ref    string
	Name   string
	PartOf string // parent "Organization/<id>", or ""
}

// Address is the part of an address the detectors compare.
type Address struct {
	Line       string // the street lines, joined
	City       string
	PostalCode string
}

// Person is a workforce member (Practitioner) and their roles.
type Person struct {
	Ref       string
	Family    string
	Given     []string
	BirthDate string // YYYY-MM-DD, or a prefix of it
	Addresses []Address
	Roles     []Role
}

// Role is one PractitionerRole: where and as what a person works, and when.
type Role struct {
	Ref          string // "PractitionerRole/<id>"
	Organization string // "Organization/<id>"
	Codes        []string
	Specialties  []string
	// Shifts are the rostered hours (availableTime); none means no
	// roster is known (hours are not checked).
	Shifts []Shift
}

// Shift is one availableTime: days of the week and a time of day range.
type Shift struct {
	Days   []time.Weekday // none: every day
	AllDay bool
	Start  time.Duration // since midnight, local time of the source
	End    time.Duration // since midnight; End <= Start wraps past midnight
}

// PatientInfo is what the detectors compare of a patient.
type PatientInfo struct {
	Ref       string
	Family    string
	Given     []string
	BirthDate string
	Addresses []Address
	// Labels are the meta.security codes ("V", "R", ...).
	Labels []string
}

// RelationKind is the kind of care or business relationship.
type RelationKind string

// Relationship kinds.
const (
	RelCareTeam   RelationKind = "care-team"
	RelEncounter  RelationKind = "encounter"
	RelOrder      RelationKind = "order"   // ServiceRequest
	RelBilling    RelationKind = "billing" // Claim or Account
	RelBreakGlass RelationKind = "break-glass"
	RelSelf       RelationKind = "own-record" // the patient's own account
)

// Relation is one fact that can explain an access to a patient: a
// CareTeam, an Encounter, a ServiceRequest, a Claim or Account, a
// break-the-glass grant.
type Relation struct {
	Kind RelationKind
	Ref  string // the resource, "Encounter/<id>"...
	// Participants are people named directly ("Practitioner/<id>",
	// "PractitionerRole/<id>" resolved to the Practitioner).
	Participants []string
	// Organizations are departments named (Encounter.serviceProvider,
	// a CareTeam's managingOrganization, ServiceRequest.performer
	// Organizations, an Account's owner).
	Organizations []string
	// Codes are role codes asked for (ServiceRequest.performerType).
	Codes []string
	// Start and End bound the relationship (Encounter.period,
	// CareTeam.period, ServiceRequest.occurrence/authoredOn). Zero
	// values are open.
	Start, End time.Time
}
