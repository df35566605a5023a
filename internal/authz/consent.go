package authz

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Consent is the part of an R4 Consent resource that authorization
// enforces: a patient-privacy consent's provisions.
//
// Provisions are a tree, as FHIR defines them: a provision applies when
// every criterion it states matches (its period, its actors — the
// caller's fhirUser, PractitionerRole or Organization —, its classes —
// resource types — and its security labels), and a nested provision that
// applies is an exception to its parent. A nested provision without a
// type is the opposite of its parent's. Among sibling exceptions that
// apply, deny wins. A permit reached through a provision that names an
// actor or a label is an explicit permit: it opens the sensitive
// categories the default policies guard ("consentPermit").
type Consent struct {
	ID      string
	Status  string
	Patient string // "Patient/<id>"
	Privacy bool   // scope is patient-privacy
	Root    *Provision
}

// Provision is one permit or deny rule of a Consent.
type Provision struct {
	Type     string // "permit" or "deny"
	Period   *period
	Actors   []string // references
	Classes  []string // resource types (Coding.code of provision.class)
	Labels   []string // security label codes
	Children []*Provision
}

// Limits on parsing a Consent, which a patient writes.
const (
	maxProvisionDepth = 4
	maxProvisions     = 64
	maxCriteria       = 64 // actors, classes or labels per provision
)

// ConsentScopePrivacy is the Consent.scope code enforced here
// (http://terminology.hl7.org/CodeSystem/consentscope).
const ConsentScopePrivacy = "patient-privacy"

type provisionJSON struct {
	Type   string  `json:"type"`
	Period *period `json:"period"`
	Actor  []struct {
		Reference reference `json:"reference"`
	} `json:"actor"`
	Class         []coding        `json:"class"`
	SecurityLabel []coding        `json:"securityLabel"`
	Provision     []provisionJSON `json:"provision"`
}

type consentJSON struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Status       string         `json:"status"`
	Scope        codeable       `json:"scope"`
	Patient      reference      `json:"patient"`
	Provision    *provisionJSON `json:"provision"`
}

// ParseConsent reads a Consent resource. It fails (wrapping
// ErrUndecidable) on JSON that is not a Consent, or on more nesting,
// provisions or criteria than the limits: a consent that cannot be read
// in full must not be half-enforced.
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
	return c, nil
}

func convert(p *provisionJSON, inherited string, depth int, n *int) (*Provision, error) {
	if depth > maxProvisionDepth {
		return nil, fmt.Errorf("parsing consent: provisions nested deeper than %d: %w", maxProvisionDepth, ErrUndecidable)
	}
	if *n++; *n > maxProvisions {
		return nil, fmt.Errorf("parsing consent: more than %d provisions: %w", maxProvisions, ErrUndecidable)
	}
	if len(p.Actor) > maxCriteria || len(p.Class) > maxCriteria || len(p.SecurityLabel) > maxCriteria {
		return nil, fmt.Errorf("parsing consent: a provision has more than %d criteria: %w", maxCriteria, ErrUndecidable)
	}
	pr := &Provision{Type: p.Type, Period: p.Period}
	if pr.Type == "" {
		pr.Type = inherited
	}
	switch pr.Type {
	case "permit", "deny", "":
	default:
		return nil, fmt.Errorf("parsing consent: unknown provision type: %w", ErrUndecidable)
	}
	for _, a := range p.Actor {
		if a.Reference.Reference != "" {
			pr.Actors = append(pr.Actors, a.Reference.Reference)
		}
	}
	for _, cd := range p.Class {
		if cd.Code != "" {
			pr.Classes = append(pr.Classes, cd.Code)
		}
	}
	for _, cd := range p.SecurityLabel {
		if cd.Code != "" {
			pr.Labels = append(pr.Labels, cd.Code)
		}
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

// Applies reports whether the consent is enforced: active and of scope
// patient-privacy.
func (c Consent) Applies() bool { return c.Status == "active" && c.Privacy }

// ConsentRequest is what a consent is matched against.
type ConsentRequest struct {
	Actors []string // the caller's fhirUser and its PractitionerRole / Organization references
	Type   string   // resource type
	Labels []string // the resource's security labels
	Now    time.Time
}

// Evaluate returns whether the consent denies the request, and whether
// it explicitly permits it.
func (c Consent) Evaluate(r ConsentRequest) (deny, permit bool) {
	if !c.Applies() || c.Root == nil {
		return false, false
	}
	effect, explicit := c.Root.eval(r)
	return effect == "deny", effect == "permit" && explicit
}

func (p *Provision) matches(r ConsentRequest) bool {
	return inPeriod(p.Period, r.Now) &&
		(len(p.Actors) == 0 || intersects(p.Actors, r.Actors)) &&
		(len(p.Classes) == 0 || slices.Contains(p.Classes, r.Type)) &&
		(len(p.Labels) == 0 || intersects(p.Labels, r.Labels))
}

// eval returns the effect of p for r ("" when p does not apply) and
// whether a permit is explicit.
func (p *Provision) eval(r ConsentRequest) (string, bool) {
	if !p.matches(r) {
		return "", false
	}
	effect, explicit := p.Type, len(p.Actors) > 0 || len(p.Labels) > 0
	var childPermit, childExplicit bool
	for _, c := range p.Children {
		e, x := c.eval(r)
		switch e {
		case "deny":
			return "deny", false // deny wins among exceptions
		case "permit":
			childPermit, childExplicit = true, childExplicit || x
		}
	}
	if childPermit {
		return "permit", childExplicit || explicit
	}
	return effect, explicit
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
