package authz

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/ident"
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
	// Relabel is lowering a resource's security labels: a write whose
	// result lacks a meta.security code the current version carries.
	// It is decided on the current version, in addition to update.
	Relabel Action = "relabel"
	// Locate is knowing that a patient exists: a name search that
	// answers the name and birth date of patients outside the caller's
	// relationships, so that a clinician can be offered break-the-glass
	// (record.Service.Locate). It is decided on the Patient resource and
	// is never a SMART interaction.
	Locate Action = "locate"
	// Export is a FHIR Bulk Data export ($export, package bulk): a
	// disclosure of what a search would return to a backend client, for
	// its registered purpose of use. Unlike the other service-credential
	// actions it is bound by patient Consents, sensitivity labels and 42
	// CFR Part 2 (the default policies do not exempt it). It needs the
	// SMART read interaction ("r") on the type.
	Export Action = "export"
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
	return []Action{Read, VRead, Search, History, Everything, Create, Update, Delete, Erase, OpenGrant, ViewIdentifiers, Relabel, Locate, Export}
}

// ParseAction returns the action named s, or false.
func ParseAction(s string) (Action, bool) {
	a := Action(s)
	return a, slices.Contains(Actions(), a)
}

// OrgOwner is the owner of resources outside any patient compartment
// (ident.Org).
const OrgOwner = string(ident.Org)

// JointPrefix starts the owner of a resource that names several
// patients ("Joint/<h>"): it belongs to each of them (ident.JointPrefix).
const JointPrefix = ident.JointPrefix

// maxJointPatients bounds the patients of one joint decision.
const maxJointPatients = 1000

// Target is the resource a request acts on.
type Target struct {
	Type  string
	ID    string // "" for a create before its id is assigned
	Owner string // "Patient/<id>", OrgOwner or "Joint/<h>" (storage.Version.Owner)
	// Patients are the patients a "Joint/<h>" owner stands for (a
	// resource naming several patients): the request is decided for each
	// of them and allowed only when every decision allows it.
	Patients []string
	Labels   []string // meta.security codes
	Category []string
	// Body is the resource's decrypted JSON when the caller knows it
	// (nil otherwise): consent criteria about content (code, data,
	// dataPeriod, profiles) are matched against it, and without it they
	// fail closed. It is read for this decision only.
	Body []byte `json:"-"`

	// probe is set on the targets search narrowing decides: no resource
	// in particular (ConsentRequest.Probe).
	probe bool
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
	// Emergency lists, for a resource naming several patients allowed
	// with Purpose ETREAT, the patients a break-the-glass grant was
	// needed for: the access is an emergency access for them only (the
	// audit event of the others records the ordinary purpose).
	Emergency []string

	// partial is set when a consent's criteria about resource content
	// took part in a decision made without the resource (a search
	// probe): the decision holds for no resource in particular.
	partial bool
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
	// JointOwners returns up to limit joint owners ("Joint/<h>") naming
	// any of patients, each with every patient it names.
	JointOwners(ctx context.Context, patients []string, limit int) (map[string][]string, error)
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
	// EncounterWindow is how long an encounter's participants keep a
	// treatment relationship after it ends. Default DefaultEncounterWindow.
	EncounterWindow time.Duration
	// Observer is told the time of every Decide and Narrow (package
	// observe implements it); nil: no one, and no clock read.
	Observer Observer
}

// Observer watches the authorizer's decisions. Decided must be safe for
// concurrent use and must not block: it runs on the request's path.
type Observer interface {
	// Decided is told that op ("decide" for Decide, "narrow" for
	// Narrow), begun at start, returned err.
	Decided(ctx context.Context, op string, start time.Time, err error)
}

// DefaultCacheTTL is how long a cached fact lives. Facts change on writes
// in this process (the generation counter drops them at once); other
// processes' writes are seen within this time.
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
	// encounterWindow: see Options.EncounterWindow.
	encounterWindow time.Duration
	observer        Observer // nil: none

	// The fact caches' hits and misses (cachestats.go).
	subjectStats, patientStats, filterStats CacheStats

	// gen invalidates user facts (CareTeam, Encounter, PractitionerRole
	// writes, grants); fgen filters and the restricted list (any fact
	// write); pgen every patient's facts (policy change). A Patient or
	// Consent write drops that one patient's facts.
	gen   atomic.Uint64
	fgen  atomic.Uint64
	pgen  atomic.Uint64
	mu    sync.Mutex
	userC map[string]userEntry
	patC  map[string]patientEntry
	// The change feed (feed.go): feedAt is the start of the last
	// successful poll (unix ns, 0 = none); invSeq counts the patients
	// dropped, patInv says when each was last dropped (under mu).
	feedAt  atomic.Int64
	invSeq  uint64
	patInv  map[string]uint64
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
	// long: the facts depend only on the patient's own Patient and
	// Consents, which the change feed covers, so they may live up to
	// LongCacheTTL (feed.go). Consents whose data refers to other
	// resources ("related") keep CacheTTL.
	long bool
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
	if o.EncounterWindow <= 0 {
		o.EncounterWindow = DefaultEncounterWindow
	}
	a := &Authorizer{src: o.Source, users: o.Users, grants: o.Grants, now: o.Now, ttl: o.CacheTTL, encounterWindow: o.EncounterWindow, observer: o.Observer,
		userC: map[string]userEntry{}, patC: map[string]patientEntry{}, patInv: map[string]uint64{}, filterC: map[filterKey]filterEntry{}}
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
func (a *Authorizer) Decide(ctx context.Context, p authn.Principal, action Action, t Target) (d Decision, err error) {
	if a.observer != nil {
		start := time.Now()
		defer func() { a.observer.Decided(ctx, "decide", start, err) }()
	}
	s, err := a.subjectOf(ctx, p)
	if err != nil {
		return Decision{}, err
	}
	return a.decide(ctx, s, action, t)
}

func (a *Authorizer) decide(ctx context.Context, s *subject, action Action, t Target) (Decision, error) {
	if strings.HasPrefix(t.Owner, JointPrefix) {
		return a.decideJoint(ctx, s, action, t)
	}
	var pf *PatientFacts
	if strings.HasPrefix(t.Owner, ident.PatientPrefix) {
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
	if action == Read || action == VRead || action == Search || action == History || action == HistoryType || action == Everything || action == Export {
		if MaskedType(t.Type) || (t.Body != nil && MayCarryIdentifiers(t.Type, t.Body)) {
			v, err := a.eval(s, ViewIdentifiers, t, pf)
			if err != nil {
				return Decision{}, err
			}
			d.Mask = !v.Allowed
		}
	}
	return d, nil
}

// decideJoint decides a resource that names several patients: it is
// every one of theirs, so each patient's decision must allow it (their
// relationships, flags and consents all apply). The first denial
// decides; an allow carries the union of the deciding policies, ETREAT
// when a grant reached any of them, and masking when any masks.
func (a *Authorizer) decideJoint(ctx context.Context, s *subject, action Action, t Target) (Decision, error) {
	if len(t.Patients) < 2 || len(t.Patients) > maxJointPatients {
		return Decision{}, fmt.Errorf("deciding on a joint owner without its patients: %w", ErrUndecidable)
	}
	out := Decision{Allowed: true}
	pols := map[string]bool{}
	for _, p := range t.Patients {
		if !strings.HasPrefix(p, ident.PatientPrefix) {
			return Decision{}, fmt.Errorf("deciding on a joint owner: a member is not a patient: %w", ErrUndecidable)
		}
		tp := t
		tp.Owner, tp.Patients = p, nil
		d, err := a.decide(ctx, s, action, tp)
		if err != nil || !d.Allowed {
			return d, err
		}
		for _, id := range d.Policies {
			pols[id] = true
		}
		out.Mask = out.Mask || d.Mask
		out.partial = out.partial || d.partial
		if d.Purpose != "" {
			out.Purpose = d.Purpose
			out.Emergency = append(out.Emergency, p)
		}
	}
	out.Policies = slices.Sorted(maps.Keys(pols))
	return out, nil
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
	var breakGlass, consentDeny, consentPermit, partial bool
	var grantReason string // the reason code of the grant in force (ETREAT, BTG, ERTREAT)
	var consentLabels []string
	if pf != nil {
		patUID := types.NewEntityUID("PhiVault::Patient", types.String(pf.Ref))
		careTeam, encounter := emptySet, emptySet
		if fhirUser != "" && s.facts.CareTeamOf[pf.Ref] {
			careTeam = types.NewSet(types.String(fhirUser))
		}
		if fhirUser != "" && s.facts.EncounterOf[pf.Ref] {
			encounter = types.NewSet(types.String(fhirUser))
		}
		proxies := emptySet
		if fhirUser != "" && s.facts.ProxyOf == pf.Ref {
			proxies = types.NewSet(types.String(fhirUser))
		}
		pe := types.Entity{UID: patUID, Parents: types.NewEntityUIDSet(), Attributes: types.NewRecord(types.RecordMap{
			"ref":                   types.String(pf.Ref),
			"careTeam":              careTeam,
			"encounterParticipants": encounter,
			"proxies":               proxies,
			"labels":                stringSet(pf.Labels),
			"vip":                   types.Boolean(pf.VIP),
			"employee":              types.Boolean(pf.Employee),
		})}
		g.patient = &pe
		attrs["patient"] = patUID
		for _, gr := range s.facts.Grants {
			if gr.Covers(pf.Ref, now) {
				breakGlass = true
				grantReason = gr.Reason
			}
		}
		if s.patient != pf.Ref { // a patient's own consent does not bind the patient
			// A consent that could not be read denies (fail closed).
			consentDeny = pf.Undecidable || namesAnyActor(pf.Consents, s.facts.Unverified)
			cr := ConsentRequest{Actors: s.actors, Type: t.Type, Labels: t.Labels, Now: now, Probe: t.probe,
				Actions: ConsentActions(action, s.p), Purpose: purposeOfUse(s.p, breakGlass)}
			if t.Body != nil && len(pf.Consents) > 0 {
				rf, err := NewResourceFacts(t.Type, t.ID, t.Body)
				if err != nil {
					return Decision{Policies: []string{"undecidable"}}, err
				}
				cr.Resource = rf
			}
			for _, c := range pf.Consents {
				r := c.Evaluate(cr)
				consentDeny, consentPermit, partial = consentDeny || r.Deny, consentPermit || r.Permit, partial || r.Partial
				consentLabels = mergeLabels(consentLabels, r.PermitLabels)
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
	// A RelatedPerson written with the proxy grant (proxy.go): who may
	// write one is the policies' ("proxy-grant").
	var grant, proof bool
	if t.Type == "RelatedPerson" && t.Body != nil && (action == Create || action == Update) {
		var err error
		if grant, proof, err = proxyGrant(t.Body); err != nil {
			return Decision{Policies: []string{"undecidable"}}, err
		}
	}
	// A note written by, or signed as, someone else (notes.go).
	var otherAuthor, otherSigner bool
	if t.Type == "DocumentReference" && t.Body != nil && (action == Create || action == Update) {
		self := append([]string{fhirUser}, s.facts.Roles...)
		var err error
		if otherAuthor, otherSigner, err = foreignNote(t.Body, self); err != nil {
			return Decision{Policies: []string{"undecidable"}}, err
		}
	}
	pol := a.policies.Load()
	glass := breakGlass
	authorize := func(deny, permit bool, permitLabels []string) (cedar.Decision, cedar.Diagnostic) {
		req := cedar.Request{
			Principal: s.uid,
			Action:    types.NewEntityUID("PhiVault::Action", types.String(policyAction(action))),
			Resource:  resUID,
			Context: types.NewRecord(types.RecordMap{
				"purpose":             types.String(purposeOfUse(s.p, glass)),
				"breakGlass":          types.Boolean(glass),
				"consentDeny":         types.Boolean(deny),
				"consentPermit":       types.Boolean(permit),
				"consentPermitLabels": stringSet(permitLabels),
				"scoped":              types.Boolean(scoped),
				"scopeAllows":         types.Boolean(scopeAllows),
				"proxyGrant":          types.Boolean(grant),
				"proxyProof":          types.Boolean(proof),
				"noteOtherAuthor":     types.Boolean(otherAuthor),
				"noteOtherSigner":     types.Boolean(otherSigner),
			}),
		}
		return cedar.Authorize(pol.set, g, req)
	}
	dec, diag := authorize(consentDeny, consentPermit, consentLabels)
	if len(diag.Errors) > 0 {
		// A policy that errors is skipped by Cedar; a skipped forbid
		// could turn a deny into an allow. Fail closed.
		ids := make([]string, 0, len(diag.Errors))
		for _, e := range diag.Errors {
			ids = append(ids, string(e.PolicyID))
		}
		return Decision{Policies: ids}, fmt.Errorf("evaluating policies %s: %w", strings.Join(ids, ","), ErrUndecidable)
	}
	if partial {
		// The consents' answer depends on each resource's content; it
		// matters only if the policies decide differently for some
		// answer (service credentials, say, are exempt from consents).
		partial = false
		for i := range 8 {
			var ls []string
			if i&4 != 0 {
				ls = t.Labels // every label the resource carries, named
			}
			if d2, diag2 := authorize(i&1 != 0, i&2 != 0, ls); d2 != dec || len(diag2.Errors) > 0 {
				partial = true
				break
			}
		}
	}
	d := Decision{Allowed: dec == cedar.Allow, partial: partial}
	for _, r := range diag.Reasons {
		d.Policies = append(d.Policies, string(r.PolicyID))
		// Concealing tells a caller nothing about what exists. A create
		// names nothing that exists yet: its refusal is a plain 403 (404
		// would tell the caller that a consent hides the patient).
		if !d.Allowed && pol.conceal[string(r.PolicyID)] && action != Create {
			d.Conceal = true
		}
	}
	slices.Sort(d.Policies)
	if len(d.Policies) == 0 {
		d.Policies = []string{PolicyNone}
	}
	if d.Allowed && breakGlass {
		// A purpose of use is recorded only for the decision it was
		// used in: ETREAT only when the grant made the difference (a
		// care-team relationship alone allows an ordinary access).
		glass = false
		if d2, diag2 := authorize(consentDeny, consentPermit, consentLabels); d2 != cedar.Allow || len(diag2.Errors) > 0 {
			// Recorded as the reason the clinician gave when breaking
			// the glass (ETREAT, BTG, ERTREAT), ETREAT if none.
			d.Purpose = "ETREAT"
			if grantReason == "BTG" || grantReason == "ERTREAT" {
				d.Purpose = grantReason
			}
		}
	}
	return d, nil
}

func scopeInteraction(a Action) (scope.Interaction, bool) {
	switch a {
	case Read, VRead, History, Everything, ViewIdentifiers, Export:
		return scope.Read, true
	case Search, HistoryType:
		return scope.Search, true
	case Create:
		return scope.Create, true
	case Update, Relabel:
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
