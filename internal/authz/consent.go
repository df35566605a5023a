package authz

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// Consent is the part of an R4 Consent resource that authorization
// enforces: a patient-privacy consent's provisions.
//
// Provisions are a tree, as FHIR defines them: a provision applies when
// every criterion it states matches, and a nested provision that applies
// is an exception to its parent. A nested provision without a type is
// the opposite of its parent's. Among sibling exceptions that apply,
// deny wins. A permit reached through a provision that names an actor or
// a label is an explicit permit: it opens the sensitive categories the
// default policies guard ("consentPermit").
//
// # Every element is enforced, or fails closed
//
// Each criterion of a provision (R4 Consent.provision: period, actor,
// action, securityLabel, purpose, class, code, dataPeriod, data) is
// matched against the request and, where the criterion is about the
// resource, against the resource's content. A criterion the engine
// cannot decide — an actor reference of a kind no caller can be (Group,
// Device), a code from an unknown system, a dataPeriod on a resource
// without a clinical time, a modifierExtension — makes the provision's
// match "unknown": an unknown deny applies and an unknown permit does
// not. A permit therefore never becomes broader than what it says.
type Consent struct {
	ID      string
	Status  string
	Patient string // "Patient/<id>"
	Privacy bool   // scope is patient-privacy
	Root    *Provision
}

// Provision is one permit or deny rule of a Consent.
type Provision struct {
	Type   string // "permit" or "deny"
	Period *period

	Actors   []string // references: "Practitioner/x", "Organization/y"...
	Actions  []string // consentaction codes
	Purposes []string // v3 PurposeOfUse codes
	Classes  []string // resource types (provision.class)
	Profiles []string // profile canonicals (provision.class as a URL)
	Labels   []string // security label codes
	Codes    []coding // provision.code codings: found anywhere in the resource

	DataPeriod *period
	Data       []DataRef

	// Unknown criteria: set when a criterion of that kind names something
	// the engine cannot match (see the type's doc). Modifier is set when
	// the provision carries a modifierExtension.
	actorUnknown, actionUnknown, purposeUnknown, classUnknown, dataUnknown, modifier bool

	Children []*Provision
}

// DataRef is one provision.data: a resource reference and how the rule
// reaches from it (consent-data-meaning).
type DataRef struct {
	Meaning   string // instance, related, dependents, authoredby
	Reference string // "Type/id"
	// Related holds, for meaning "related", the references found in the
	// referenced resource (resolved when the patient's facts load);
	// RelatedResolved says whether that resolution succeeded.
	Related         []string
	RelatedResolved bool
}

// Limits on parsing a Consent, which a patient writes. A consent beyond
// them is refused when written (ErrUndecidable: the record answers 422)
// and, if one is stored anyway (older data), denies every actor it could
// bind (fail closed, PatientFacts.Undecidable).
const (
	maxProvisionDepth = 8
	maxProvisions     = 64
	maxCriteria       = 64 // actors, classes, labels... per provision
)

// Code systems the engine understands.
const (
	ConsentScopePrivacy   = "patient-privacy" // Consent.scope code enforced here
	systemConsentAction   = "http://terminology.hl7.org/CodeSystem/consentaction"
	systemPurposeOfUse    = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	systemPurposeOfUseAlt = "http://terminology.hl7.org/CodeSystem/v3-PurposeOfUse"
	systemResourceTypes   = "http://hl7.org/fhir/resource-types"
	systemURI             = "urn:ietf:rfc:3986"
)

type provisionJSON struct {
	Type   string  `json:"type"`
	Period *period `json:"period"`
	Actor  []struct {
		Role      *codeable  `json:"role"`
		Reference *reference `json:"reference"`
	} `json:"actor"`
	Action        []codeable `json:"action"`
	SecurityLabel []coding   `json:"securityLabel"`
	Purpose       []coding   `json:"purpose"`
	Class         []coding   `json:"class"`
	Code          []codeable `json:"code"`
	DataPeriod    *period    `json:"dataPeriod"`
	Data          []struct {
		Meaning   string    `json:"meaning"`
		Reference reference `json:"reference"`
	} `json:"data"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
	Provision         []provisionJSON   `json:"provision"`
}

type consentJSON struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id"`
	Status            string            `json:"status"`
	Scope             codeable          `json:"scope"`
	Patient           reference         `json:"patient"`
	Provision         *provisionJSON    `json:"provision"`
	ModifierExtension []json.RawMessage `json:"modifierExtension"`
}

// ParseConsent reads a Consent resource. It fails (wrapping
// ErrUndecidable, with a message that says why and quotes nothing) on
// JSON that is not a Consent, or on more nesting, provisions or
// criteria than the limits: a consent that cannot be read in full must
// not be half-enforced.
func ParseConsent(body []byte) (Consent, error) {
	var cj consentJSON
	if err := json.Unmarshal(body, &cj); err != nil {
		return Consent{}, fmt.Errorf("parsing consent: %w", ErrUndecidable)
	}
	if cj.ResourceType != "Consent" {
		return Consent{}, fmt.Errorf("parsing consent: not a Consent: %w", ErrUndecidable)
	}
	c := Consent{ID: cj.ID, Status: cj.Status, Patient: cj.Patient.Reference}
	for _, cd := range cj.Scope.Coding {
		if cd.Code == ConsentScopePrivacy {
			c.Privacy = true
		}
	}
	if cj.Provision != nil {
		n := 0
		root, err := convert(cj.Provision, "", 1, &n)
		if err != nil {
			return Consent{}, err
		}
		c.Root = root
	}
	if len(cj.ModifierExtension) > 0 {
		// A modifier on the consent itself changes its meaning in a way
		// this engine cannot know: everything it says is "unknown" (its
		// denies apply, its permits do not).
		if c.Root == nil {
			c.Root = &Provision{Type: "deny"}
		}
		markModifier(c.Root)
	}
	return c, nil
}

func markModifier(p *Provision) {
	p.modifier = true
	for _, c := range p.Children {
		markModifier(c)
	}
}

func convert(p *provisionJSON, inherited string, depth int, n *int) (*Provision, error) {
	if depth > maxProvisionDepth {
		return nil, fmt.Errorf("parsing consent: provisions nested deeper than %d levels: %w", maxProvisionDepth, ErrUndecidable)
	}
	if *n++; *n > maxProvisions {
		return nil, fmt.Errorf("parsing consent: more than %d provisions: %w", maxProvisions, ErrUndecidable)
	}
	for _, l := range []int{len(p.Actor), len(p.Action), len(p.SecurityLabel), len(p.Purpose), len(p.Class), len(p.Code), len(p.Data)} {
		if l > maxCriteria {
			return nil, fmt.Errorf("parsing consent: a provision has more than %d criteria of one kind: %w", maxCriteria, ErrUndecidable)
		}
	}
	pr := &Provision{Type: p.Type, Period: p.Period, DataPeriod: p.DataPeriod, modifier: len(p.ModifierExtension) > 0}
	if pr.Type == "" {
		pr.Type = inherited
	}
	switch pr.Type {
	case "permit", "deny":
	case "":
		// A root without a type says nothing it could be enforced as:
		// its children still apply as exceptions of an unknown base.
	default:
		return nil, fmt.Errorf("parsing consent: unknown provision type: %w", ErrUndecidable)
	}
	for _, a := range p.Actor {
		ref := ""
		if a.Reference != nil {
			ref = a.Reference.Reference
		}
		if matchableActor(ref) {
			pr.Actors = append(pr.Actors, ref)
		} else {
			pr.actorUnknown = true
		}
	}
	for _, cc := range p.Action {
		known := false
		for _, cd := range cc.Coding {
			if (cd.System == systemConsentAction || cd.System == "") && slices.Contains(consentActions, cd.Code) {
				pr.Actions = append(pr.Actions, cd.Code)
				known = true
			}
		}
		if !known {
			pr.actionUnknown = true
		}
	}
	for _, cd := range p.Purpose {
		if (cd.System == systemPurposeOfUse || cd.System == systemPurposeOfUseAlt || cd.System == "") && cd.Code != "" {
			pr.Purposes = append(pr.Purposes, cd.Code)
		} else {
			pr.purposeUnknown = true
		}
	}
	for _, cd := range p.Class {
		switch {
		case cd.Code == "":
			pr.classUnknown = true
		case cd.System == systemURI || strings.HasPrefix(cd.Code, "http://") || strings.HasPrefix(cd.Code, "https://"):
			pr.Profiles = append(pr.Profiles, cd.Code)
		case cd.System == systemResourceTypes || cd.System == "":
			pr.Classes = append(pr.Classes, cd.Code)
		default:
			pr.classUnknown = true
		}
	}
	for _, cd := range p.SecurityLabel {
		if cd.Code != "" {
			pr.Labels = append(pr.Labels, cd.Code)
		}
	}
	for _, cc := range p.Code {
		for _, cd := range cc.Coding {
			if cd.Code != "" {
				pr.Codes = append(pr.Codes, cd)
			}
		}
	}
	for _, d := range p.Data {
		ref := d.Reference.Reference
		if !relativeRef(ref) || !slices.Contains([]string{"instance", "related", "dependents", "authoredby"}, d.Meaning) {
			pr.dataUnknown = true
			continue
		}
		pr.Data = append(pr.Data, DataRef{Meaning: d.Meaning, Reference: ref})
	}
	child := ""
	switch pr.Type {
	case "permit":
		child = "deny"
	case "deny":
		child = "permit"
	}
	for i := range p.Provision {
		c, err := convert(&p.Provision[i], child, depth+1, n)
		if err != nil {
			return nil, err
		}
		pr.Children = append(pr.Children, c)
	}
	return pr, nil
}

// consentActions are the codes of http://terminology.hl7.org/CodeSystem/consentaction.
var consentActions = []string{"collect", "access", "use", "disclose", "correct"}

// matchableActor reports whether a caller can ever be ref: a relative
// reference to a kind of actor the engine knows callers by (their
// fhirUser, its PractitionerRoles, Organizations and CareTeams, or a
// patient's own account).
func matchableActor(ref string) bool {
	if !relativeRef(ref) {
		return false
	}
	typ, _, _ := strings.Cut(ref, "/")
	switch typ {
	case "Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson":
		return true
	}
	return false
}

// relativeRef reports whether ref is "Type/id" (no URL, no contained
// "#", no version).
func relativeRef(ref string) bool {
	typ, id, ok := strings.Cut(ref, "/")
	return ok && typ != "" && id != "" && !strings.ContainsAny(id, "/#?") && typ[0] >= 'A' && typ[0] <= 'Z'
}

// Applies reports whether the consent is enforced: active and of scope
// patient-privacy.
func (c Consent) Applies() bool { return c.Status == "active" && c.Privacy }

// ConsentRequest is what a consent is matched against.
type ConsentRequest struct {
	// Actors are the caller's fhirUser and the PractitionerRole,
	// Organization (with the organizations they are part of) and
	// CareTeam references it acts as.
	Actors  []string
	Type    string   // resource type
	Actions []string // consentaction codes the request performs (ConsentActions)
	Purpose string   // the request's v3 PurposeOfUse (TREAT, ETREAT...)
	Labels  []string // the resource's security labels
	Now     time.Time
	// Resource is the resource's content, for the criteria about it
	// (code, class as a profile, dataPeriod, data); without it those
	// criteria are unknown (fail closed).
	Resource *ResourceFacts
	// Probe is set for the decisions search narrowing makes about no
	// resource in particular (Labels are then the probe's, not a
	// resource's): criteria about content, labels included, make the
	// result Partial.
	Probe bool
}

// ConsentResult is the effect of one consent on one request.
type ConsentResult struct {
	Deny   bool // the consent denies the request
	Permit bool // the consent explicitly permits it (names the actor or a label)
	// PermitLabels are, for a permit whose provisions name the actor,
	// the labels of the resource they name too: a consent to disclose
	// 42 CFR Part 2 records must name the recipient and that information
	// (§2.31).
	PermitLabels []string
	// Partial is set when the request had no Resource and a criterion
	// about resource content decided part of the answer: the answer
	// holds for no resource in particular (search narrowing must decide
	// each resource of this patient on its own).
	Partial bool
}

// Evaluate returns the consent's effect on r.
func (c Consent) Evaluate(r ConsentRequest) ConsentResult {
	if !c.Applies() || c.Root == nil {
		return ConsentResult{}
	}
	e := evaluation{r: r}
	effect, n := e.eval(c.Root)
	out := ConsentResult{Deny: effect == "deny", Permit: effect == "permit" && (n.actor || len(n.labels) > 0), Partial: e.partial}
	if effect == "permit" && n.actor {
		out.PermitLabels = n.labels
	}
	return out
}

type evaluation struct {
	r       ConsentRequest
	partial bool
}

// tri is a criterion's answer: it matches, it does not, or the engine
// cannot tell.
type tri int8

const (
	no tri = iota
	yes
	unknown
)

// and combines criteria: any no is no, else any unknown is unknown.
func and(ts ...tri) tri {
	out := yes
	for _, t := range ts {
		switch t {
		case no:
			return no
		case unknown:
			out = unknown
		}
	}
	return out
}

// anyOf is a criterion of several values (OR): any yes is yes, else
// unknown if one could not be decided, else no. An empty criterion
// matches.
func anyOf(n int, unknownSeen bool, match func(i int) tri) tri {
	if n == 0 && !unknownSeen {
		return yes
	}
	out := no
	if unknownSeen {
		out = unknown
	}
	for i := range n {
		switch match(i) {
		case yes:
			return yes
		case unknown:
			out = unknown
		}
	}
	return out
}

// named says what the provisions that led to a permit name: an actor,
// labels the resource carries (the criteria that make a permit explicit).
type named struct {
	actor  bool
	labels []string
}

func (n named) or(m named) named {
	return named{n.actor || m.actor, mergeLabels(n.labels, m.labels)}
}

func mergeLabels(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// eval returns the effect of p for the request ("" when p does not
// apply) and, for a permit, what the provisions leading to it name.
func (e *evaluation) eval(p *Provision) (string, named) {
	switch e.match(p) {
	case no:
		return "", named{}
	case unknown:
		if p.Type != "deny" {
			return "", named{} // a permit that may not apply does not
		}
		// a deny that may apply does
	}
	effect, own := p.Type, named{actor: len(p.Actors) > 0}
	for _, l := range p.Labels {
		if slices.Contains(e.r.Labels, l) {
			own.labels = append(own.labels, l)
		}
	}
	var childPermit bool
	var fromChildren named
	for _, c := range p.Children {
		eff, n := e.eval(c)
		switch eff {
		case "deny":
			return "deny", named{} // deny wins among exceptions
		case "permit":
			childPermit = true
			fromChildren = fromChildren.or(n)
		}
	}
	if childPermit {
		return "permit", fromChildren.or(own)
	}
	return effect, own
}

// match decides whether every criterion of p holds for the request.
func (e *evaluation) match(p *Provision) tri {
	r := e.r
	m := and(
		periodMatch(p.Period, r.Now),
		anyOf(len(p.Actors), p.actorUnknown, func(i int) tri { return boolTri(slices.Contains(r.Actors, p.Actors[i])) }),
		anyOf(len(p.Actions), p.actionUnknown, func(i int) tri { return boolTri(slices.Contains(r.Actions, p.Actions[i])) }),
		anyOf(len(p.Purposes), p.purposeUnknown, func(i int) tri { return boolTri(purposeCovers(p.Purposes[i], r.Purpose)) }),
		e.classMatch(p),
	)
	if m == no {
		return no
	}
	if p.modifier {
		m = unknown
	}
	// Criteria about the resource's content.
	content := len(p.Codes) > 0 || p.DataPeriod != nil || len(p.Data) > 0 || p.dataUnknown
	if !content && len(p.Labels) == 0 {
		return m
	}
	if r.Probe {
		e.partial = true
		// A probe answers as if they matched (for a deny: fail closed);
		// the caller decides each resource of this patient on its own.
		return and(m, unknown)
	}
	m = and(m, anyOf(len(p.Labels), false, func(i int) tri { return boolTri(slices.Contains(r.Labels, p.Labels[i])) }))
	if !content || m == no {
		return m
	}
	rf := r.Resource
	if rf == nil {
		return and(m, unknown)
	}
	return and(m,
		anyOf(len(p.Codes), false, func(i int) tri { return boolTri(rf.hasCoding(p.Codes[i])) }),
		rf.inDataPeriod(p.DataPeriod),
		anyOf(len(p.Data), p.dataUnknown, func(i int) tri { return rf.dataMatch(p.Data[i]) }),
	)
}

// classMatch matches provision.class: resource types against the
// request's type, profiles against the resource's meta.profile.
func (e *evaluation) classMatch(p *Provision) tri {
	if len(p.Classes) == 0 && len(p.Profiles) == 0 && !p.classUnknown {
		return yes
	}
	if slices.Contains(p.Classes, e.r.Type) {
		return yes
	}
	out := no
	if p.classUnknown {
		out = unknown
	}
	if len(p.Profiles) > 0 {
		if e.r.Probe {
			e.partial = true
			return unknown
		}
		if e.r.Resource == nil {
			return unknown
		}
		for _, pr := range p.Profiles {
			if slices.Contains(e.r.Resource.Profiles, pr) {
				return yes
			}
		}
	}
	return out
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// periodMatch: now within p (open ends allowed); an unreadable bound is
// unknown.
func periodMatch(p *period, now time.Time) tri {
	if p == nil {
		return yes
	}
	if p.Start != "" {
		t, ok := fhir.ParseDateTime(p.Start, false)
		if !ok {
			return unknown
		}
		if now.Before(t) {
			return no
		}
	}
	if p.End != "" {
		t, ok := fhir.ParseDateTime(p.End, true)
		if !ok {
			return unknown
		}
		if now.After(t) {
			return no
		}
	}
	return yes
}

// purposeParents maps the v3 PurposeOfUse codes phivault records to
// their ancestors in the code system's hierarchy: a provision about
// TREAT also covers ETREAT (emergency treatment is treatment).
var purposeParents = map[string][]string{
	"ETREAT":  {"TREAT"},
	"ERTREAT": {"ETREAT", "TREAT"},
	"BTG":     {"ETREAT", "TREAT"},
	"CAREMGT": {"TREAT"},
	"POPHLTH": {"TREAT"},
	"CLINTRL": {"TREAT"},
}

// purposeCovers reports whether a provision's purpose code covers the
// request's purpose (equal, or an ancestor of it).
func purposeCovers(code, purpose string) bool {
	return code == purpose || slices.Contains(purposeParents[purpose], code)
}

// namesAnyActor reports whether a provision of one of consents names one
// of refs as an actor.
func namesAnyActor(consents []Consent, refs []string) bool {
	if len(refs) == 0 {
		return false
	}
	var walk func(p *Provision) bool
	walk = func(p *Provision) bool {
		if p == nil {
			return false
		}
		for _, a := range p.Actors {
			if slices.Contains(refs, a) {
				return true
			}
		}
		return slices.ContainsFunc(p.Children, walk)
	}
	for _, c := range consents {
		if walk(c.Root) {
			return true
		}
	}
	return false
}
