package authz

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
)

// Found is one stored resource handed to authorization by its [Source]:
// decrypted JSON, never logged, never kept beyond the facts derived from it.
type Found struct {
	Type, ID string
	Owner    string // storage.Version.Owner: "Patient/<id>" or "org"
	JSON     []byte
	// Tampered is set, and JSON nil, for a version of a patient that
	// failed its integrity check (its row, or its key record, was
	// changed in the database). It names no relationship; a reader
	// that needs its content fails closed (nil is not JSON).
	Tampered bool
}

// maxRelations bounds the resources read to build one user's facts
// (roles, care teams, encounters). Beyond it the user's decisions fail
// closed with ErrUndecidable rather than be made on a truncated view.
const maxRelations = 5000

// maxConsents bounds the Consents read for one patient; a patient with
// more is decided as if one of the others denied (PatientFacts.Undecidable).
const maxConsents = 1000

// UserFacts is what stored data says about a workforce user, derived
// from PractitionerRole, CareTeam and Encounter resources that reference
// the user's fhirUser Practitioner.
type UserFacts struct {
	FHIRUser     string
	Organization string // the first active PractitionerRole's organization
	Department   string
	// Roles are the user's active "PractitionerRole/<id>"; Organizations
	// the organizations of those roles and every organization they are
	// part of (Organization.partOf), sorted: consent actors match them.
	Roles         []string
	Organizations []string
	CareTeams     []string // "CareTeam/<id>", sorted
	// Unverified are the "CareTeam/<id>" naming the user whose content
	// failed its integrity check: the user is not taken as a member,
	// and a consent naming one denies (it might have applied).
	Unverified  []string
	CareTeamOf  map[string]bool // patient owner -> active care-team member
	EncounterOf map[string]bool // patient owner -> encounter participant
	Grants      []Grant         // unexpired break-the-glass grants at load time
	// ProxyOf is the patient owner a RelatedPerson account holds an
	// active proxy grant for ("" for none; proxy.go).
	ProxyOf string
}

// Related returns the patient owners the user has a treatment
// relationship or an unexpired grant with, sorted.
func (u *UserFacts) Related(now time.Time) []string {
	set := map[string]bool{}
	for p := range u.CareTeamOf {
		set[p] = true
	}
	for p := range u.EncounterOf {
		set[p] = true
	}
	for _, g := range u.Grants {
		if g.Covers(g.Patient, now) {
			set[g.Patient] = true
		}
	}
	if u.ProxyOf != "" {
		set[u.ProxyOf] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// PatientFacts is what stored data says about a patient: the Patient
// resource's labels and flags, and its patient-privacy Consents.
type PatientFacts struct {
	Ref      string // "Patient/<id>"
	Labels   []string
	VIP      bool
	Employee bool
	Consents []Consent
	// Undecidable is set when one of the patient's Consents could not be
	// read (beyond the parser's limits: written before they were checked
	// at write time). It denies every access a consent could bind
	// ("consent-deny"); the patient's own account and service
	// credentials are not bound, so the patient (or a repair) can still
	// fix it. It never fails a decision about another patient.
	Undecidable bool
	// UndecidableConsents are the ids of the Consents that could not be read.
	UndecidableConsents []string
}

// Labels that flag a patient (meta.security or meta.tag codes of the
// Patient resource). "EMP" is the v3 RoleCode for an employee.
var (
	vipCodes      = []string{"VIP"}
	employeeCodes = []string{"EMP", "employee"}
)

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type codeable struct {
	Coding []coding `json:"coding"`
}

type reference struct {
	Reference string `json:"reference"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// MaxLabels bounds the distinct security labels (and tags) of one
// resource, and its category codes. A resource with more is not
// decided on a truncated list (which would drop a sensitive label):
// it is refused when written and undecidable when read.
const MaxLabels = 64

type metaOnly struct {
	Meta struct {
		Security []coding `json:"security"`
		Tag      []coding `json:"tag"`
	} `json:"meta"`
	Category json.RawMessage `json:"category"`
	// Contained resources travel with their container: their labels are
	// the container's too (a Part 2 record contained in an unlabelled
	// resource is still a Part 2 record).
	Contained []struct {
		Meta struct {
			Security []coding `json:"security"`
			Tag      []coding `json:"tag"`
		} `json:"meta"`
	} `json:"contained"`
}

// ResourceLabels returns the meta.security codes of a resource and of
// the resources it contains (and, withTags, their meta.tag codes) and
// its category codes. Malformed JSON is an error: the caller fails
// closed.
func ResourceLabels(body []byte, withTags bool) (labels, category []string, err error) {
	var m metaOnly
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, nil, fmt.Errorf("reading resource labels: %w", ErrUndecidable)
	}
	add := func(cs []coding) {
		for _, c := range cs {
			if c.Code != "" && !slices.Contains(labels, c.Code) {
				labels = append(labels, c.Code)
			}
		}
	}
	add(m.Meta.Security)
	for _, c := range m.Contained {
		add(c.Meta.Security)
	}
	if withTags {
		add(m.Meta.Tag)
		for _, c := range m.Contained {
			add(c.Meta.Tag)
		}
	}
	if len(labels) > MaxLabels {
		return nil, nil, fmt.Errorf("reading resource labels: more than %d labels: %w", MaxLabels, ErrTooManyLabels)
	}
	if len(m.Category) > 0 {
		// category is a CodeableConcept or an array of them depending on type.
		var one codeable
		var many []codeable
		if json.Unmarshal(m.Category, &many) == nil {
			for _, c := range many {
				for _, cd := range c.Coding {
					if cd.Code != "" {
						category = append(category, cd.Code)
					}
				}
			}
		} else if json.Unmarshal(m.Category, &one) == nil {
			for _, cd := range one.Coding {
				if cd.Code != "" {
					category = append(category, cd.Code)
				}
			}
		}
		if len(category) > MaxLabels {
			return nil, nil, fmt.Errorf("reading resource categories: more than %d: %w", MaxLabels, ErrTooManyLabels)
		}
	}
	return labels, category, nil
}

// patientFacts derives PatientFacts from the Patient resource (nil if
// none is stored) and the patient's Consent resources.
func patientFacts(ref string, patient []byte, consents []Found) (PatientFacts, error) {
	pf := PatientFacts{Ref: ref}
	if patient != nil {
		labels, _, err := ResourceLabels(patient, true)
		if err != nil {
			return PatientFacts{}, err
		}
		pf.Labels = labels
		for _, l := range labels {
			pf.VIP = pf.VIP || slices.Contains(vipCodes, l)
			pf.Employee = pf.Employee || slices.Contains(employeeCodes, l)
		}
	}
	for _, f := range consents {
		c, err := ParseConsent(f.JSON)
		if err != nil {
			if !possiblyEnforced(f.JSON) {
				continue // inactive (a retired one, say): never enforced
			}
			pf.Undecidable = true
			pf.UndecidableConsents = append(pf.UndecidableConsents, f.ID)
			continue
		}
		if !c.Applies() {
			continue
		}
		switch consentPatient(c.Patient) {
		case ref:
			pf.Consents = append(pf.Consents, c)
		default:
			// Stored under this patient (its owner is the patient the
			// record resolved from this reference) but naming it in a
			// spelling not understood here: a deny must not be lost
			// (penetration test: an absolute URL was stored and never
			// enforced). Fail closed, as for an unreadable Consent.
			pf.Undecidable = true
			pf.UndecidableConsents = append(pf.UndecidableConsents, f.ID)
		}
	}
	return pf, nil
}

// consentPatient returns a Consent's patient reference as "Patient/<id>":
// an absolute URL (this server's base, or another server of the fleet)
// and a version suffix ("/_history/2") are reduced to the type and id.
func consentPatient(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	if strings.Contains(ref, "://") {
		if i := strings.LastIndex(ref, "/Patient/"); i >= 0 {
			ref = ref[i+1:]
		}
	}
	return ref
}

// possiblyEnforced reports whether a Consent that could not be parsed
// in full might be enforced: unless its status can be read and is not
// active, it might (fail closed).
func possiblyEnforced(body []byte) bool {
	var c struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &c) != nil {
		return true
	}
	return c.Status == "active"
}

// careTeamFacts reads an R4 CareTeam: its subject, status, period and
// participant members (with their periods).
type careTeamJSON struct {
	Status      string    `json:"status"`
	Subject     reference `json:"subject"`
	Period      *period   `json:"period"`
	Participant []struct {
		Member reference `json:"member"`
		Period *period   `json:"period"`
	} `json:"participant"`
}

type encounterJSON struct {
	Status      string    `json:"status"`
	Subject     reference `json:"subject"`
	Period      *period   `json:"period"`
	Participant []struct {
		Individual reference `json:"individual"`
		Period     *period   `json:"period"`
	} `json:"participant"`
}

type practitionerRoleJSON struct {
	Active       *bool      `json:"active"`
	Practitioner reference  `json:"practitioner"`
	Organization reference  `json:"organization"`
	Specialty    []codeable `json:"specialty"`
	Period       *period    `json:"period"`
}

// inPeriod reports whether now falls within p (open ends allowed). An
// unparseable bound counts as not in the period (fail closed for grants
// of access; consents treat it the same way, see consent.go).
func inPeriod(p *period, now time.Time) bool {
	if p == nil {
		return true
	}
	if p.Start != "" {
		t, ok := fhir.ParseDateTime(p.Start, false)
		if !ok || now.Before(t) {
			return false
		}
	}
	if p.End != "" {
		t, ok := fhir.ParseDateTime(p.End, true)
		if !ok || now.After(t) {
			return false
		}
	}
	return true
}

// DefaultEncounterWindow is how long after an encounter ends (its
// period.end, or the participant's) its participants keep their
// treatment relationship with the patient: follow-up of results,
// discharge letters and coding questions come in the weeks after a
// visit. After it the relationship ends; a care team is the lasting one.
const DefaultEncounterWindow = 30 * 24 * time.Hour

// Encounter windows besides DefaultEncounterWindow (after the end):
const (
	// encounterLead: a planned encounter opens the record this long
	// before its start, to prepare the visit.
	encounterLead = 7 * 24 * time.Hour
	// maxOpenEncounter: an encounter still going on without an end date
	// gives a relationship for at most this long after its start (a stay
	// longer than that is followed by a care team); without it an
	// encounter left "in-progress" by mistake would never end.
	maxOpenEncounter = 90 * 24 * time.Hour
)

// encounterCurrent reports whether an encounter (or a participant's part
// in it) still gives a relationship at now: from 7 days before its
// start until its end plus window. One still going on (planned, arrived,
// triaged, in-progress, onleave) without an end counts until 90 days
// after its start; one finished without an end, until its start plus
// window. Without a start it gives none (fail closed): a relationship
// needs a date to end.
func encounterCurrent(status string, p *period, now time.Time, window time.Duration) bool {
	if p == nil || p.Start == "" {
		if p == nil || p.End == "" {
			return false
		}
		t, ok := fhir.ParseDateTime(p.End, true)
		return ok && !now.After(t.Add(window))
	}
	start, ok := fhir.ParseDateTime(p.Start, false)
	if !ok || now.Before(start.Add(-encounterLead)) {
		return false
	}
	if p.End != "" {
		t, ok := fhir.ParseDateTime(p.End, true)
		return ok && !now.After(t.Add(window))
	}
	if status == "finished" || status == "unknown" {
		return !now.After(start.Add(window))
	}
	return !now.After(start.Add(maxOpenEncounter))
}

// userFacts derives UserFacts for fhirUser from the PractitionerRoles of
// the practitioner and the CareTeams and Encounters naming it (directly
// or through one of its PractitionerRoles). An encounter relationship
// lasts until the encounter's end plus window (encounterCurrent).
func userFacts(fhirUser string, roles, careTeams, encounters []Found, now time.Time, window time.Duration) (UserFacts, error) {
	uf := UserFacts{FHIRUser: fhirUser, CareTeamOf: map[string]bool{}, EncounterOf: map[string]bool{}}
	members := map[string]bool{fhirUser: true}
	for _, f := range roles {
		var pr practitionerRoleJSON
		if err := json.Unmarshal(f.JSON, &pr); err != nil {
			return UserFacts{}, fmt.Errorf("reading PractitionerRole/%s: %w", f.ID, ErrUndecidable)
		}
		if pr.Practitioner.Reference != fhirUser || (pr.Active != nil && !*pr.Active) || !inPeriod(pr.Period, now) {
			continue
		}
		members["PractitionerRole/"+f.ID] = true
		uf.Roles = append(uf.Roles, "PractitionerRole/"+f.ID)
		if uf.Organization == "" {
			uf.Organization = pr.Organization.Reference
		}
		if o := pr.Organization.Reference; o != "" && !slices.Contains(uf.Organizations, o) {
			uf.Organizations = append(uf.Organizations, o)
		}
		if uf.Department == "" && len(pr.Specialty) > 0 && len(pr.Specialty[0].Coding) > 0 {
			uf.Department = pr.Specialty[0].Coding[0].Code
		}
	}
	for _, f := range careTeams {
		if f.Tampered {
			uf.Unverified = append(uf.Unverified, "CareTeam/"+f.ID)
			continue
		}
		var ct careTeamJSON
		if err := json.Unmarshal(f.JSON, &ct); err != nil {
			return UserFacts{}, fmt.Errorf("reading CareTeam/%s: %w", f.ID, ErrUndecidable)
		}
		if ct.Status != "" && ct.Status != "active" || !inPeriod(ct.Period, now) {
			continue
		}
		if !strings.HasPrefix(f.Owner, ident.PatientPrefix) || ct.Subject.Reference != f.Owner {
			continue
		}
		for _, p := range ct.Participant {
			if members[p.Member.Reference] && inPeriod(p.Period, now) {
				uf.CareTeamOf[f.Owner] = true
				uf.CareTeams = append(uf.CareTeams, "CareTeam/"+f.ID)
				break
			}
		}
	}
	for _, f := range encounters {
		if f.Tampered {
			continue // no participation shown: no relationship
		}
		var e encounterJSON
		if err := json.Unmarshal(f.JSON, &e); err != nil {
			return UserFacts{}, fmt.Errorf("reading Encounter/%s: %w", f.ID, ErrUndecidable)
		}
		if e.Status == "cancelled" || e.Status == "entered-in-error" {
			continue
		}
		if !strings.HasPrefix(f.Owner, ident.PatientPrefix) || e.Subject.Reference != f.Owner {
			continue
		}
		if !encounterCurrent(e.Status, e.Period, now, window) {
			continue
		}
		for _, p := range e.Participant {
			if members[p.Individual.Reference] && (p.Period == nil || encounterCurrent("finished", p.Period, now, window)) {
				uf.EncounterOf[f.Owner] = true
				break
			}
		}
	}
	slices.Sort(uf.CareTeams)
	uf.CareTeams = slices.Compact(uf.CareTeams)
	slices.Sort(uf.Roles)
	return uf, nil
}
