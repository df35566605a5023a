package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
)

// Entities: the facts a decision needs, loaded from the Source, cached
// with generations (see Changed) and a TTL, and turned into Cedar
// entities per request.

// Invalidate drops every cached fact and filter: the record calls it
// after a write of a resource type that entities are built from.
func (a *Authorizer) Invalidate() {
	a.gen.Add(1)
	a.fgen.Add(1)
	a.pgen.Add(1)
}

// Changed is the record's write hook, called after a committed write of
// typ owned by owner ("" when unknown): it invalidates what the write
// can change. Other processes' writes are seen through the change feed
// (feed.go), or within CacheTTL.
func (a *Authorizer) Changed(typ, owner string) {
	if strings.HasPrefix(owner, JointPrefix) {
		// A resource naming several patients: filters list joint owners.
		a.fgen.Add(1)
	}
	switch typ {
	case "CareTeam", "Encounter", "PractitionerRole", "RelatedPerson":
		a.gen.Add(1)
		a.fgen.Add(1)
	case "Patient", "Consent":
		a.fgen.Add(1)
		if owner == "" || !strings.HasPrefix(owner, ident.PatientPrefix) {
			a.pgen.Add(1)
			return
		}
		a.dropPatient(owner)
	}
}

// subject is the principal as the policies see it, with its facts.
type subject struct {
	p       authn.Principal
	uid     types.EntityUID
	entity  types.Entity
	facts   UserFacts
	actors  []string // fhirUser, PractitionerRole and Organization refs (consent actors)
	patient string   // "Patient/<id>" for a patient account
}

type noIOKey struct{}

// WithoutIO marks ctx so that decisions and filters use cached facts
// only, failing with ErrNeedsFacts instead of reading storage.
func WithoutIO(ctx context.Context) context.Context { return context.WithValue(ctx, noIOKey{}, true) }

func noIO(ctx context.Context) bool { v, _ := ctx.Value(noIOKey{}).(bool); return v }

// principalKey identifies a principal to the policies: kind and id.
func principalKey(p authn.Principal) string { return string(p.Kind) + ":" + p.ID }

// cacheKey identifies what a cached subject or filter was computed
// for: the principal and everything of it a decision reads besides the
// stored facts, its roles and SMART scopes. Two tokens of one account
// can carry different scopes (and roles change): each gets its own.
func cacheKey(p authn.Principal) string {
	k := principalKey(p) + "\x00" + strings.Join(p.Roles, ",")
	if p.Scopes != nil {
		k += "\x00" + p.Scopes.String()
	}
	if p.Purpose != "" {
		k += "\x00purpose=" + p.Purpose
	}
	return k
}

// subjectOf loads (or reuses) the subject for p.
func (a *Authorizer) subjectOf(ctx context.Context, p authn.Principal) (*subject, error) {
	key := cacheKey(p)
	g, now := a.gen.Load(), a.now()
	a.mu.Lock()
	e, ok := a.userC[key]
	a.mu.Unlock()
	// Under WithoutIO (inside a write transaction) facts younger than the
	// TTL serve even if a write elsewhere bumped the generation: the
	// transaction cannot load, and concurrent writes of CareTeams and
	// Encounters (an import) would otherwise starve it. The staleness is
	// the one other processes' writes have anyway (CacheTTL).
	hit := ok && (e.gen == g || noIO(ctx)) && now.Sub(e.loaded) < a.ttl
	a.subjectStats.count(hit)
	if hit {
		return e.facts, nil
	}
	if noIO(ctx) {
		return nil, &NeedsFacts{}
	}
	s := &subject{p: p}
	// A session, and a SMART App Launch token (which acts for the user
	// who approved it), are a user: their facts decide, and the token's
	// scopes only narrow (the scope gate ran before).
	if p.Kind == authn.KindSession || p.Kind == authn.KindSMARTApp {
		u, err := a.users.ByID(ctx, p.ID)
		if err != nil {
			return nil, fmt.Errorf("loading user %s: %w: %w", p.ID, ErrUndecidable, err)
		}
		s.facts.FHIRUser = u.FHIRUser
		switch {
		case strings.HasPrefix(u.FHIRUser, ident.PatientPrefix):
			s.patient = u.FHIRUser
		case strings.HasPrefix(u.FHIRUser, "RelatedPerson/"):
			// A proxy account (proxy.go): no record of its own.
			owner, err := a.loadProxyFacts(ctx, u.FHIRUser, now)
			if err != nil {
				return nil, err
			}
			s.facts.ProxyOf = owner
		case strings.HasPrefix(u.FHIRUser, "Practitioner/"):
			uf, err := a.loadUserFacts(ctx, u.FHIRUser, now)
			if err != nil {
				return nil, err
			}
			s.facts = uf
		}
		grants, err := a.grants.ActiveGrants(ctx, p.ID, now)
		if err != nil {
			return nil, fmt.Errorf("loading grants: %w: %w", ErrUndecidable, err)
		}
		s.facts.Grants = grants
	}
	s.actors = []string{}
	if s.facts.FHIRUser != "" {
		s.actors = append(s.actors, s.facts.FHIRUser)
	}
	s.actors = append(s.actors, s.facts.Roles...)
	s.actors = append(s.actors, s.facts.Organizations...)
	s.actors = append(s.actors, s.facts.CareTeams...)
	a.buildEntity(s)
	a.mu.Lock()
	if len(a.userC) >= maxCached {
		clear(a.userC)
	}
	a.userC[key] = userEntry{gen: g, loaded: now, facts: s}
	a.mu.Unlock()
	return s, nil
}

func (a *Authorizer) loadUserFacts(ctx context.Context, fhirUser string, now time.Time) (UserFacts, error) {
	fail := func(what string, err error) (UserFacts, error) {
		return UserFacts{}, fmt.Errorf("loading %s of %s: %w: %w", what, fhirUser, ErrUndecidable, err)
	}
	roles, err := a.src.Referencing(ctx, "PractitionerRole", "practitioner", fhirUser, maxRelations+1)
	if err != nil {
		return fail("practitioner roles", err)
	}
	refs := []string{fhirUser}
	for _, r := range roles {
		refs = append(refs, "PractitionerRole/"+r.ID)
	}
	var teams, encs []Found
	for _, ref := range refs {
		t, err := a.src.Referencing(ctx, "CareTeam", "participant", ref, maxRelations+1)
		if err != nil {
			return fail("care teams", err)
		}
		teams = append(teams, t...)
		e, err := a.src.Referencing(ctx, "Encounter", "participant", ref, maxRelations+1)
		if err != nil {
			return fail("encounters", err)
		}
		encs = append(encs, e...)
	}
	if len(roles) > maxRelations || len(teams) > maxRelations || len(encs) > maxRelations {
		return fail("relations", errors.New("more relations than the limit"))
	}
	uf, err := userFacts(fhirUser, roles, teams, encs, now, a.encounterWindow)
	if err != nil {
		return UserFacts{}, err
	}
	// The organizations the user's organizations are part of: a consent
	// naming a hospital binds its departments' staff.
	seen := map[string]bool{}
	queue := slices.Clone(uf.Organizations)
	for len(queue) > 0 && len(seen) < maxOrganizations {
		o := queue[0]
		queue = queue[1:]
		if seen[o] {
			continue
		}
		seen[o] = true
		typ, id := splitRef(o)
		if typ != "Organization" {
			continue
		}
		f, found, err := a.src.Resource(ctx, typ, id)
		if err != nil {
			return fail("organizations", err)
		}
		if !found {
			continue
		}
		var org struct {
			PartOf reference `json:"partOf"`
		}
		if json.Unmarshal(f.JSON, &org) == nil && org.PartOf.Reference != "" && relativeRef(org.PartOf.Reference) {
			queue = append(queue, org.PartOf.Reference)
		}
	}
	uf.Organizations = slices.Sorted(maps.Keys(seen))
	return uf, nil
}

// maxOrganizations bounds the organization hierarchy walked for one user.
const maxOrganizations = 64

// buildEntity builds the Cedar entity of s from its principal and facts.
func (a *Authorizer) buildEntity(s *subject) {
	p := s.p
	key := principalKey(p)
	s.uid = types.NewEntityUID("PhiVault::User", types.String(key))
	parents := make([]types.EntityUID, 0, len(p.Roles))
	for _, r := range p.Roles {
		parents = append(parents, types.NewEntityUID("PhiVault::Role", types.String(r)))
	}
	cts := make([]types.Value, 0, len(s.facts.CareTeams))
	for _, c := range s.facts.CareTeams {
		cts = append(cts, types.String(c))
	}
	s.entity = types.Entity{UID: s.uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(types.RecordMap{
		"kind":         types.String(p.Kind),
		"fhirUser":     types.String(s.facts.FHIRUser),
		"organization": types.String(s.facts.Organization),
		"department":   types.String(s.facts.Department),
		"careTeams":    types.NewSet(cts...),
	})}
}

// patientFactsOf loads (or reuses) the facts of owner "Patient/<id>".
func (a *Authorizer) patientFactsOf(ctx context.Context, owner string) (*PatientFacts, error) {
	g, now := a.pgen.Load(), a.now()
	a.mu.Lock()
	e, ok := a.patC[owner]
	inv := a.invSeq
	a.mu.Unlock()
	hit := ok && e.gen == g && a.patientFresh(e, now)
	a.patientStats.count(hit)
	if hit {
		return e.facts, nil
	}
	if noIO(ctx) {
		return nil, &NeedsFacts{Owner: owner}
	}
	id := strings.TrimPrefix(owner, ident.PatientPrefix)
	f, found, err := a.src.Resource(ctx, "Patient", id)
	if err != nil {
		return nil, fmt.Errorf("loading patient facts: %w: %w", ErrUndecidable, err)
	}
	var body []byte
	if found {
		body = f.JSON
	}
	consents, err := a.src.OwnedOfType(ctx, owner, "Consent", maxConsents+1)
	if err != nil {
		return nil, fmt.Errorf("loading consents: %w: %w", ErrUndecidable, err)
	}
	pf, err := patientFacts(owner, body, consents)
	if err != nil {
		return nil, err
	}
	if len(consents) > maxConsents {
		// More consents than are read: the rest could deny. Fail closed
		// for this patient alone.
		pf.Undecidable = true
	}
	long := true
	for i := range pf.Consents {
		if !hasRelated(pf.Consents[i].Root) {
			continue
		}
		long = false
		err := resolveRelated(pf.Consents[i].Root, func(ref string) ([]byte, bool, error) {
			typ, id := splitRef(ref)
			f, found, err := a.src.Resource(ctx, typ, id)
			return f.JSON, found, err
		})
		if err != nil {
			return nil, fmt.Errorf("loading consent data: %w: %w", ErrUndecidable, err)
		}
	}
	a.mu.Lock()
	// Dropped while this load ran (a write committed meanwhile): what
	// was read may be the previous state, so it is used once, not kept.
	if a.patInv[owner] <= inv {
		if len(a.patC) >= maxCached {
			clear(a.patC)
		}
		a.patC[owner] = patientEntry{gen: g, loaded: now, facts: &pf, long: long}
	}
	a.mu.Unlock()
	return &pf, nil
}
