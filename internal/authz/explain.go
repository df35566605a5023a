package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
)

// Explanation is a decision with the facts it was made on: what
// "phivault policy explain" prints. It holds references and codes only.
type Explanation struct {
	Decision
	Principal   string // "session:usr_..."
	Roles       []string
	FHIRUser    string
	Resource    string // "Type/id"
	Owner       string
	Labels      []string
	CareTeam    bool // the principal is on the patient's care team
	Encounter   bool // ... took part in one of its encounters
	BreakGlass  bool // ... holds an unexpired grant on the patient
	ConsentDeny bool
	ConsentOK   bool // an explicit consent permit
	VIP         bool
	Employee    bool
}

// Explain decides like Decide and reports the facts behind the answer.
func (a *Authorizer) Explain(ctx context.Context, p authn.Principal, action Action, t Target) (Explanation, error) {
	s, err := a.subjectOf(ctx, p)
	if err != nil {
		return Explanation{}, err
	}
	d, err := a.decide(ctx, s, action, t)
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{Decision: d, Principal: principalKey(p), Roles: p.Roles, FHIRUser: s.facts.FHIRUser,
		Resource: t.Type + "/" + t.ID, Owner: t.Owner, Labels: t.Labels}
	if strings.HasPrefix(t.Owner, ident.PatientPrefix) {
		pf, err := a.patientFactsOf(ctx, t.Owner)
		if err != nil {
			return Explanation{}, err
		}
		now := a.now()
		x.CareTeam, x.Encounter = s.facts.CareTeamOf[t.Owner], s.facts.EncounterOf[t.Owner]
		for _, g := range s.facts.Grants {
			x.BreakGlass = x.BreakGlass || g.Covers(t.Owner, now)
		}
		x.VIP, x.Employee = pf.VIP, pf.Employee
		if s.patient != t.Owner {
			x.ConsentDeny = pf.Undecidable
			cr := ConsentRequest{Actors: s.actors, Type: t.Type, Labels: t.Labels, Now: now,
				Actions: ConsentActions(action, p), Purpose: purposeOfUse(p, x.BreakGlass)}
			if t.Body != nil {
				if cr.Resource, err = NewResourceFacts(t.Type, t.ID, t.Body); err != nil {
					return Explanation{}, err
				}
			}
			for _, c := range pf.Consents {
				r := c.Evaluate(cr)
				x.ConsentDeny, x.ConsentOK = x.ConsentDeny || r.Deny, x.ConsentOK || r.Permit
			}
		}
	}
	return x, nil
}

// Case is one policy test case ("phivault policy test"): a principal,
// its relationships, a patient's facts, a request and the expected
// answer. Facts are given, not loaded: a case tests policies alone.
type Case struct {
	Name      string `json:"name"`
	Principal struct {
		Kind     authn.Kind `json:"kind"` // session, token, smart-client
		ID       string     `json:"id"`
		Roles    []string   `json:"roles"`
		FHIRUser string     `json:"fhirUser"`
	} `json:"principal"`
	Relations struct {
		CareTeam  []string `json:"careTeam"`  // patient owners
		Encounter []string `json:"encounter"` // patient owners
		Grants    []string `json:"grants"`    // patient owners under an unexpired grant
	} `json:"relations"`
	Patient struct {
		Labels   []string          `json:"labels"`
		Consents []json.RawMessage `json:"consents"`
	} `json:"patient"`
	Action   string   `json:"action"`
	Resource Target   `json:"resource"`
	Expect   string   `json:"expect"`   // allow or deny
	Policies []string `json:"policies"` // optional: the deciding policy ids expected
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Name     string
	Decision Decision
	Pass     bool
	Why      string // on failure
}

// maxCases bounds one test file.
const maxCases = 10000

// RunCases evaluates cases against pol. An error means the file itself
// is invalid (not a failed case).
func RunCases(pol *Policies, cases []Case) ([]CaseResult, error) {
	if len(cases) > maxCases {
		return nil, fmt.Errorf("more than %d cases", maxCases)
	}
	a := &Authorizer{now: time.Now}
	a.policies.Store(pol)
	var out []CaseResult
	for i, c := range cases {
		act, ok := ParseAction(c.Action)
		if !ok {
			return nil, fmt.Errorf("case %d (%s): unknown action", i+1, c.Name)
		}
		if c.Expect != "allow" && c.Expect != "deny" {
			return nil, fmt.Errorf("case %d (%s): expect must be allow or deny", i+1, c.Name)
		}
		p := authn.Principal{Kind: c.Principal.Kind, ID: c.Principal.ID, Roles: c.Principal.Roles}
		if p.Kind == "" {
			p.Kind = authn.KindSession
		}
		s := a.caseSubject(p, c)
		var pf *PatientFacts
		if strings.HasPrefix(c.Resource.Owner, ident.PatientPrefix) {
			pf = &PatientFacts{Ref: c.Resource.Owner, Labels: c.Patient.Labels}
			for _, l := range c.Patient.Labels {
				pf.VIP = pf.VIP || slices.Contains(vipCodes, l)
				pf.Employee = pf.Employee || slices.Contains(employeeCodes, l)
			}
			for j, raw := range c.Patient.Consents {
				cs, err := ParseConsent(raw)
				if err != nil {
					return nil, fmt.Errorf("case %d (%s): consent %d: %w", i+1, c.Name, j+1, err)
				}
				pf.Consents = append(pf.Consents, cs)
			}
		} else if c.Resource.Owner != OrgOwner {
			return nil, fmt.Errorf("case %d (%s): resource.owner must be Patient/<id> or org", i+1, c.Name)
		}
		d, err := a.eval(s, act, c.Resource, pf)
		r := CaseResult{Name: c.Name, Decision: d, Pass: true}
		switch {
		case err != nil:
			r.Pass, r.Why = false, err.Error()
		case d.Allowed != (c.Expect == "allow"):
			r.Pass, r.Why = false, fmt.Sprintf("got %s by %v, want %s", word(d.Allowed), d.Policies, c.Expect)
		case len(c.Policies) > 0 && !slices.Equal(sorted(c.Policies), d.Policies):
			r.Pass, r.Why = false, fmt.Sprintf("decided by %v, want %v", d.Policies, sorted(c.Policies))
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *Authorizer) caseSubject(p authn.Principal, c Case) *subject {
	s := &subject{p: p}
	s.facts = UserFacts{FHIRUser: c.Principal.FHIRUser, CareTeamOf: map[string]bool{}, EncounterOf: map[string]bool{}}
	for _, o := range c.Relations.CareTeam {
		s.facts.CareTeamOf[o] = true
	}
	for _, o := range c.Relations.Encounter {
		s.facts.EncounterOf[o] = true
	}
	now := a.now()
	for _, o := range c.Relations.Grants {
		s.facts.Grants = append(s.facts.Grants, Grant{Patient: o, Created: now.Add(-1), Expires: now.Add(DefaultGrantTTL)})
	}
	if strings.HasPrefix(c.Principal.FHIRUser, ident.PatientPrefix) {
		s.patient = c.Principal.FHIRUser
	}
	if s.facts.FHIRUser != "" {
		s.actors = []string{s.facts.FHIRUser}
	}
	a.buildEntity(s)
	return s
}

func sorted(ss []string) []string { out := slices.Clone(ss); slices.Sort(out); return out }

func word(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}
