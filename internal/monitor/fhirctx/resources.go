package fhirctx

import "encoding/json"

// The fields of each resource type that the directory needs; everything
// else is ignored by the decoder.

type entry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

// kind is read first, so that only the types the directory needs are
// decoded (a union of every type's fields would refuse valid resources
// of other types whose fields of the same name have another shape).
type kind struct {
	ResourceType string `json:"resourceType"`
}

type reference struct {
	Reference string `json:"reference"`
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type concept struct {
	Coding []coding `json:"coding"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type humanName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type address struct {
	Use        string   `json:"use"`
	Line       []string `json:"line"`
	City       string   `json:"city"`
	PostalCode string   `json:"postalCode"`
}

type availableTime struct {
	DaysOfWeek []string `json:"daysOfWeek"`
	AllDay     bool     `json:"allDay"`
	Start      string   `json:"availableStartTime"`
	End        string   `json:"availableEndTime"`
}

type participant struct {
	Individual reference `json:"individual"` // Encounter
	Member     reference `json:"member"`     // CareTeam
	Period     period    `json:"period"`     // this participant's part, within the relation's
}

// resource is the union of the fields read from every type.
type resource struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		Security []coding `json:"security"`
	} `json:"meta"`
	Active *bool `json:"active"`

	// Organization
	Name   jsonName  `json:"name"`
	PartOf reference `json:"partOf"`

	// Practitioner, Patient
	BirthDate string    `json:"birthDate"`
	Address   []address `json:"address"`

	// PractitionerRole
	Practitioner    reference       `json:"practitioner"`
	Organization    reference       `json:"organization"`
	Code            concepts        `json:"code"` // a list (PractitionerRole), one (ServiceRequest)
	Specialty       []concept       `json:"specialty"`
	AvailableTime   []availableTime `json:"availableTime"`
	Period          period          `json:"period"`
	ServiceProvider reference       `json:"serviceProvider"`

	// Encounter, CareTeam, ServiceRequest
	Subject              subjects      `json:"subject"` // a reference, or a list (Account)
	Participant          []participant `json:"participant"`
	ManagingOrganization subjects      `json:"managingOrganization"` // a list (CareTeam), one (Patient)
	PerformerType        concept       `json:"performerType"`
	Performer            []reference   `json:"performer"`
	Requester            reference     `json:"requester"`
	OccurrenceDateTime   string        `json:"occurrenceDateTime"`
	OccurrencePeriod     period        `json:"occurrencePeriod"`
	AuthoredOn           string        `json:"authoredOn"`

	// Claim, Account
	Patient        reference `json:"patient"`
	Provider       reference `json:"provider"`
	BillablePeriod period    `json:"billablePeriod"`
	Created        string    `json:"created"`
	Owner          reference `json:"owner"`
	ServicePeriod  period    `json:"servicePeriod"`
}
