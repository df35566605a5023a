package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
)

// Action is a FHIR interaction (or authorization operation) as the
// policies name it: PhiVault::Action::"<action>".
type Action string

// Actions.
const (
	Read            Action = "read"
	VRead           Action = "vread"
	Search          Action = "search"
	History         Action = "history"
	Everything      Action = "everything"
	Create          Action = "create"
	Update          Action = "update"
	Delete          Action = "delete"
	Erase           Action = "erase" // Patient/$erase: crypto-shredding
	OpenGrant       Action = "breakGlass"
	ViewIdentifiers Action = "viewIdentifiers"
)

// HistoryType is type- and system-level history. The policies decide it
// as [History] (PhiVault::Action::"history"); only the SMART scope it
// needs differs: SMART App Launch 2.0 puts type- and system-level
// history under "s" (search), instance history under "r" (read). It is
// not a policy action, so [Actions] does not list it.
const HistoryType Action = "history-type"

// policyAction is the action the policies decide for a.
func policyAction(a Action) Action {
	if a == HistoryType {
		return History
	}
	return a
}

// Actions lists the FHIR interactions a policy can decide.
func Actions() []Action {
	return []Action{Read, VRead, Search, History, Everything, Create, Update, Delete, Erase, OpenGrant, ViewIdentifiers}
}

// ParseAction returns the action named s, or false.
func ParseAction(s string) (Action, bool) {
	a := Action(s)
	return a, slices.Contains(Actions(), a)
}

// OrgOwner is the owner of resources outside any patient compartment
// (record.OrgOwner, repeated here so authz does not import record).
const OrgOwner = "org"

// Target is the resource a request acts on.
type Target struct {
	Type     string
	ID       string   // "" for a create before its id is assigned
	Owner    string   // "Patient/<id>" or OrgOwner (storage.Version.Owner)
	Labels   []string // meta.security codes
	Category []string
}

// Decision is the answer to one request.
type Decision struct {
	Allowed bool
	// Policies are the @id of the policies that decided: the matching
	// permits when allowed, the matching forbids when denied (empty for
	// a denial because nothing permitted).
	Policies []string
	// Purpose is "ETREAT" when a break-the-glass grant covered the
	// patient; "" otherwise (the caller's own purpose stands).
	Purpose string
	// Mask is set when the caller may not see identifiers in clear
	// (minimum necessary: mask.go).
	Mask bool
	// Conceal is set on a denial decided by a policy annotated
	// @conceal("true"): the answer must not reveal that the resource
	// exists (404, not 403; ADR 0011).
	Conceal bool
}

// PolicyNone is recorded as the deciding policy of a default deny:
// nothing permitted the request.
const PolicyNone = "default-deny"

// Source reads the stored data entities are built from. record.Service
// implements it; the reads are not audited (they decide, they do not
// disclose), and nothing read is kept beyond the derived facts.
type Source interface {
	// Referencing returns up to limit current resources of typ whose
	// search parameter param references ref ("Practitioner/x").
	Referencing(ctx context.Context, typ, param, ref string, limit int) ([]Found, error)
	// OwnedOfType returns up to limit current resources of typ owned by owner.
	OwnedOfType(ctx context.Context, owner, typ string, limit int) ([]Found, error)
	// Resource returns the current version of typ/id; an error wrapping
	// storage.ErrNotFound (or a gone resource: found=false) when none.
	Resource(ctx context.Context, typ, id string) (f Found, found bool, err error)
	// OwnersOf returns the distinct owners of up to limit current
	// resources of typ carrying label ("" = any), without decrypting.
	OwnersOf(ctx context.Context, typ, label string, limit int) ([]string, error)
}

// Users finds accounts (identity.Directory satisfies it).
type Users interface {
	ByID(ctx context.Context, id string) (identity.User, error)
}

// Options configures an Authorizer.
type Options struct {
	Policies *Policies
	Source   Source
	Users    Users
	Grants   GrantStore
	Now      func() time.Time // time.Now when nil
	// CacheTTL bounds how long derived facts are reused when no local
	// write invalidated them: the staleness another process's write
	// can cause (PostgreSQL fleets). Default DefaultCacheTTL.
	CacheTTL time.Duration
}

// DefaultCacheTTL: facts change on writes in this process (the
// generation counter drops them at once); other processes' writes are
// seen within this time.
const DefaultCacheTTL = 5 * time.Second

// maxCached bounds each fact cache.
const maxCached = 50000

// Authorizer decides requests against the policies with entities built
// from stored data. It is safe for concurrent use.
type Authorizer struct {
	policies atomic.Pointer[Policies]
	src      Source
	users    Users
	grants   GrantStore
	now      func() time.Time
	ttl      time.Duration

	// gen invalidates user facts (CareTeam, Encounter, PractitionerRole
	// writes, grants); fgen filters and the restricted list (any fact
	// write); pgen every patient's facts (policy change). A Patient or
	// Consent write drops that one patient's facts.
	gen     atomic.Uint64
	fgen    atomic.Uint64
	pgen    atomic.Uint64
	mu      sync.Mutex
	userC   map[string]userEntry
	patC    map[string]patientEntry
	restrC  *restrictedEntry
	filterC map[filterKey]filterEntry
}

type userEntry struct {
	gen    uint64
	loaded time.Time
	facts  *subject
}

type patientEntry struct {
	gen    uint64
	loaded time.Time
	facts  *PatientFacts
}

type restrictedEntry struct {
	gen    uint64
	loaded time.Time
	owners []string
}

// New returns an Authorizer. Policies, Source and Users are required.
func New(o Options) (*Authorizer, error) {
	if o.Policies == nil || o.Source == nil || o.Users == nil || o.Grants == nil {
		return nil, errors.New("authz: Options.Policies, Source, Users and Grants are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	a := &Authorizer{src: o.Source, users: o.Users, grants: o.Grants, now: o.Now, ttl: o.CacheTTL,
		userC: map[string]userEntry{}, patC: map[string]patientEntry{}, filterC: map[filterKey]filterEntry{}}
	a.policies.Store(o.Policies)
	return a, nil
}

// Policies returns the policy set in force.
func (a *Authorizer) Policies() *Policies { return a.policies.Load() }

// anyPatient stands for "a patient the caller has no relationship with,
// no flags and no consents": the probe search narrowing starts from.
const anyPatient = "Patient/*"

// Decide decides whether p may do action on t. Any failure to decide is
// a denial with an error wrapping ErrUndecidable (fail closed); the
// Decision is then the zero value (not allowed).
func (a *Authorizer) Decide(ctx context.Context, p authn.Principal, action Action, t Target) (Decision, error) {
	s, err := a.subjectOf(ctx, p)
	if err != nil {
		return Decision{}, err
	}
	return a.decide(ctx, s, action, t)
}

func (a *Authorizer) decide(ctx context.Context, s *subject, action Action, t Target) (Decision, error) {
	var pf *PatientFacts
	if strings.HasPrefix(t.Owner, "Patient/") {
		if t.Owner == anyPatient {
			pf = &PatientFacts{Ref: anyPatient}
		} else {
			var err error
			if pf, err = a.patientFactsOf(ctx, t.Owner); err != nil {
				return Decision{}, err
			}
		}
	} else if t.Owner != OrgOwner {
		return Decision{}, fmt.Errorf("deciding on an unknown owner kind: %w", ErrUndecidable)
	}
	d, err := a.eval(s, action, t, pf)
	if err != nil || !d.Allowed {
		return d, err
	}
	if action == Read || action == VRead || action == Search || action == History || action == HistoryType || action == Everything {
		if t.Type == "Patient" || t.Type == "RelatedPerson" || t.Type == "Person" {
			v, err := a.eval(s, ViewIdentifiers, t, pf)
			if err != nil {
				return Decision{}, err
			}
			d.Mask = !v.Allowed
		}
	}
	return d, nil
}

// getter serves the three entities of one request without a map.
type getter struct{ user, patient, resource *types.Entity }

func (g getter) Get(uid types.EntityUID) (types.Entity, bool) {
	for _, e := range []*types.Entity{g.user, g.patient, g.resource} {
		if e != nil && e.UID == uid {
			return *e, true
		}
	}
	return types.Entity{}, false
}

func stringSet(ss []string) types.Set {
	vs := make([]types.Value, len(ss))
	for i, s := range ss {
		vs[i] = types.String(s)
	}
	return types.NewSet(vs...)
}

var emptySet = types.NewSet()

// eval builds the entities and context and runs the policies.
func (a *Authorizer) eval(s *subject, action Action, t Target, pf *PatientFacts) (Decision, error) {
	now := a.now()
	fhirUser := s.facts.FHIRUser
	resUID := types.NewEntityUID("PhiVault::Resource", types.String(t.Type+"/"+t.ID))
	attrs := types.RecordMap{
		"type":        types.String(t.Type),
		"compartment": types.Boolean(pf != nil),
		"labels":      stringSet(t.Labels),
		"category":    stringSet(t.Category),
	}
	g := getter{user: &s.entity}
	var breakGlass, consentDeny, consentPermit bool
	if pf != nil {
		patUID := types.NewEntityUID("PhiVault::Patient", types.String(pf.Ref))
		careTeam, encounter := emptySet, emptySet
		if fhirUser != "" && s.facts.CareTeamOf[pf.Ref] {
			careTeam = types.NewSet(types.String(fhirUser))
		}
		if fhirUser != "" && s.facts.EncounterOf[pf.Ref] {
			encounter = types.NewSet(types.String(fhirUser))
		}
		pe := types.Entity{UID: patUID, Parents: types.NewEntityUIDSet(), Attributes: types.NewRecord(types.RecordMap{
			"ref":                   types.String(pf.Ref),
			"careTeam":              careTeam,
			"encounterParticipants": encounter,
			"labels":                stringSet(pf.Labels),
			"vip":                   types.Boolean(pf.VIP),
			"employee":              types.Boolean(pf.Employee),
		})}
		g.patient = &pe
		attrs["patient"] = patUID
		for _, gr := range s.facts.Grants {
			breakGlass = breakGlass || gr.Covers(pf.Ref, now)
		}
		if s.patient != pf.Ref { // a patient's own consent does not bind the patient
			cr := ConsentRequest{Actors: s.actors, Type: t.Type, Labels: t.Labels, Now: now}
			for _, c := range pf.Consents {
				d, p := c.Evaluate(cr)
				consentDeny, consentPermit = consentDeny || d, consentPermit || p
			}
		}
	}
	parents := types.NewEntityUIDSet()
	if g.patient != nil {
		parents = types.NewEntityUIDSet(g.patient.UID)
	}
	re := types.Entity{UID: resUID, Parents: parents, Attributes: types.NewRecord(attrs)}
	g.resource = &re
	scoped, scopeAllows := s.p.Scopes != nil, false
	if scoped {
		if i, ok := scopeInteraction(action); ok {
			if s.p.Kind == authn.KindSMARTApp {
				// An app acts for its user: patient/ scopes (the launch
				// gate confines them to the launch patient's compartment)
				// and user/ scopes; never system/.
				scopeAllows = s.p.Scopes.Allows(scope.Patient, t.Type, i) || s.p.Scopes.Allows(scope.User, t.Type, i)
			} else {
				scopeAllows = s.p.Scopes.Allows(scope.System, t.Type, i)
			}
		}
	}
	purpose := "TREAT"
	if breakGlass {
		purpose = "ETREAT"
	}
	req := cedar.Request{
		Principal: s.uid,
		Action:    types.NewEntityUID("PhiVault::Action", types.String(policyAction(action))),
		Resource:  resUID,
		Context: types.NewRecord(types.RecordMap{
			"purpose":       types.String(purpose),
			"breakGlass":    types.Boolean(breakGlass),
			"consentDeny":   types.Boolean(consentDeny),
			"consentPermit": types.Boolean(consentPermit),
			"scoped":        types.Boolean(scoped),
			"scopeAllows":   types.Boolean(scopeAllows),
		}),
	}
	dec, diag := cedar.Authorize(a.policies.Load().set, g, req)
	if len(diag.Errors) > 0 {
		// A policy that errors is skipped by Cedar; a skipped forbid
		// could turn a deny into an allow. Fail closed.
		ids := make([]string, 0, len(diag.Errors))
		for _, e := range diag.Errors {
			ids = append(ids, string(e.PolicyID))
		}
		return Decision{Policies: ids}, fmt.Errorf("evaluating policies %s: %w", strings.Join(ids, ","), ErrUndecidable)
	}
	d := Decision{Allowed: dec == cedar.Allow}
	pol := a.policies.Load()
	for _, r := range diag.Reasons {
		d.Policies = append(d.Policies, string(r.PolicyID))
		if !d.Allowed && pol.conceal[string(r.PolicyID)] {
			d.Conceal = true
		}
	}
	slices.Sort(d.Policies)
	if len(d.Policies) == 0 {
		d.Policies = []string{PolicyNone}
	}
	if d.Allowed && breakGlass {
		d.Purpose = "ETREAT"
	}
	return d, nil
}

func scopeInteraction(a Action) (scope.Interaction, bool) {
	switch a {
	case Read, VRead, History, Everything, ViewIdentifiers:
		return scope.Read, true
	case Search, HistoryType:
		return scope.Search, true
	case Create:
		return scope.Create, true
	case Update:
		return scope.Update, true
	case Delete, Erase:
		return scope.Delete, true
	}
	return 0, false
}

// Bound is an Authorizer bound to one request's principal: the guard
// the record consults (record.Guard). It is safe for concurrent use.
type Bound struct {
	a *Authorizer
	p authn.Principal
}

// For binds a to p.
func (a *Authorizer) For(p authn.Principal) *Bound { return &Bound{a: a, p: p} }

// Decide is Authorizer.Decide for the bound principal.
func (b *Bound) Decide(ctx context.Context, action Action, t Target) (Decision, error) {
	return b.a.Decide(ctx, b.p, action, t)
}

// Narrow is Authorizer.Narrow for the bound principal.
func (b *Bound) Narrow(ctx context.Context, action Action, typ string) (Filter, error) {
	return b.a.Narrow(ctx, b.p, action, typ)
}
