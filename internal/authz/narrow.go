package authz

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
)

// FilterLabels are the security labels search narrowing filters on:
// the sensitive categories of DESIGN §8 and 42 CFR Part 2 codes. The
// record indexes every meta.security code of every resource (as a blind
// index), so a label rule runs inside the store query.
var FilterLabels = []string{"R", "V", "PSY", "HIV", "ETH", "SDV", "42CFRPart2", "SUD", "ETHUD", "OPIOIDUD", "ALCUD", "COCAINUD"}

// Filter is a search decision turned into conditions the store applies
// inside the query, so totals, paging and search predicates only ever
// see what the caller may see.
//
// A resource passes when its owner passes (All and not in Except, or in
// Owners) and, for each LabelRule whose label it carries, its owner
// passes the rule. Resources of the PerRow owners never pass the
// filter: the caller decides each of them on its own content (reading
// it) and admits the allowed ones by id.
type Filter struct {
	All    bool     // every owner, except Except
	Owners []string // when !All: the owners allowed ("Patient/<id>", "org", "Joint/<h>")
	Except []string // when All: the owners excluded
	Labels []LabelRule
	// PerRow are the owners whose decisions depend on each resource's
	// content (a consent with criteria about labels, codes, data or
	// dates that bind this caller): they are excluded from the owner
	// conditions above, and the record decides their resources one by
	// one.
	PerRow []string
	// Policies are the ids of the policies that decided the probes.
	Policies []string
	// Purpose is ETREAT when any owner is reached under a grant.
	Purpose string
	// Mask is set when some resource the filter admits may be shown to
	// the caller masked (minimum necessary, mask.go): a probe allowed
	// with Mask, or one decided per row (fail closed). Searching such a
	// type by the values masking hides would be a lookup oracle.
	Mask bool
}

// LabelRule restricts resources carrying Label to owners in Owners
// (Except false) or not in Owners (Except true).
type LabelRule struct {
	Label  string
	Owners []string
	Except bool
}

// Nothing reports whether the filter admits no resource at all.
func (f Filter) Nothing() bool { return !f.All && len(f.Owners) == 0 && len(f.PerRow) == 0 }

// MaxFilterOwners bounds the owners of one filter (a bound on query
// size: each is a bound parameter). A caller related to more patients
// gets ErrUndecidable for a search: narrow it with a patient parameter.
const MaxFilterOwners = 10000

// maxRestricted bounds the patients with consents or flags considered.
const maxRestricted = 20000

type filterKey struct {
	principal string
	action    Action
	typ       string
}

type filterEntry struct {
	gen    uint64
	loaded time.Time
	f      Filter
}

// filterTTL: a filter depends on the time (grant expiry, consent
// periods); it is reused only briefly.
const filterTTL = 2 * time.Second

// Narrow computes the filter for p doing action (search, or the search
// part of a batch) on resources of typ. Failure wraps ErrUndecidable:
// the caller denies.
//
// The filter is built by deciding probes: a patient the caller has no
// relationship with (if allowed, every owner is, bar the restricted
// patients — those with consents or VIP/employee flags — that a
// decision of their own denies); otherwise each related patient (care
// team, encounter, grant, own record) and "org" in turn. Then each label
// the policies name ([Policies.Labels]) is probed the same way. A
// patient whose decision depends on the content of each resource (a
// consent about labels, codes or data that binds this caller) is put
// in PerRow. Resources naming several patients ("Joint/..." owners)
// pass when every patient they name does.
func (a *Authorizer) Narrow(ctx context.Context, p authn.Principal, action Action, typ string) (_ Filter, err error) {
	if a.observer != nil {
		start := time.Now()
		defer func() { a.observer.Decided(ctx, "narrow", start, err) }()
	}
	key := filterKey{principal: cacheKey(p), action: action, typ: typ}
	g, now := a.gen.Load()<<32^a.fgen.Load(), a.now()
	a.mu.Lock()
	e, ok := a.filterC[key]
	a.mu.Unlock()
	// Inside a write transaction (conditional matching) a filter younger
	// than filterTTL serves even after a write elsewhere: see subjectOf.
	hit := ok && (e.gen == g || noIO(ctx)) && now.Sub(e.loaded) < filterTTL
	a.filterStats.count(hit)
	if hit {
		return e.f, nil
	}
	if noIO(ctx) {
		return Filter{}, &NeedsFacts{Filter: typ}
	}
	s, err := a.subjectOf(ctx, p)
	if err != nil {
		return Filter{}, err
	}
	f, err := a.narrow(ctx, s, action, typ, now)
	if err != nil {
		return Filter{}, err
	}
	a.mu.Lock()
	if len(a.filterC) >= maxCached {
		clear(a.filterC)
	}
	a.filterC[key] = filterEntry{gen: g, loaded: now, f: f}
	a.mu.Unlock()
	return f, nil
}

func (a *Authorizer) narrow(ctx context.Context, s *subject, action Action, typ string, now time.Time) (Filter, error) {
	var f Filter
	policies := map[string]bool{}
	perRow := map[string]bool{}
	// decide probes owner with labels; ok=false, partial=true when the
	// decision depends on each resource's content.
	decide := func(owner string, labels []string) (ok, partial bool, err error) {
		d, err := a.decide(ctx, s, action, Target{Type: typ, Owner: owner, Labels: labels, probe: true})
		if err != nil {
			return false, false, err
		}
		if d.partial {
			f.Mask = f.Mask || MaskedType(typ)
			return false, true, nil
		}
		if d.Allowed {
			f.Mask = f.Mask || d.Mask
			for _, id := range d.Policies {
				policies[id] = true
			}
			if d.Purpose != "" {
				f.Purpose = d.Purpose
			}
		}
		return d.Allowed, false, nil
	}
	related := s.facts.Related(now)
	if s.patient != "" {
		related = append(related, s.patient)
	}
	anyOK, _, err := decide(anyPatient, nil)
	if err != nil {
		return Filter{}, err
	}
	var restricted []string
	if anyOK {
		if restricted, err = a.restricted(ctx); err != nil {
			return Filter{}, err
		}
	}
	// candidates: every owner whose decision may differ from the probe's.
	candidates := slices.Concat([]string{OrgOwner}, related, restricted)
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)
	allowed := map[string]bool{}
	for _, o := range candidates {
		ok, partial, err := decide(o, nil)
		if err != nil {
			return Filter{}, err
		}
		if partial {
			perRow[o] = true
			continue
		}
		allowed[o] = ok
		switch {
		case anyOK && !ok && o != OrgOwner:
			f.Except = append(f.Except, o)
		case !anyOK && ok:
			f.Owners = append(f.Owners, o)
		}
	}
	f.All = anyOK
	if anyOK && !allowed[OrgOwner] && !perRow[OrgOwner] {
		f.Except = append(f.Except, OrgOwner)
	}
	for _, l := range a.policies.Load().labels {
		labels := []string{l}
		base := false
		if anyOK {
			if base, _, err = decide(anyPatient, labels); err != nil {
				return Filter{}, err
			}
		}
		rule := LabelRule{Label: l, Except: base}
		for _, o := range candidates {
			if !allowed[o] || perRow[o] {
				continue // the owner is excluded anyway
			}
			ok, partial, err := decide(o, labels)
			if err != nil {
				return Filter{}, err
			}
			if partial {
				perRow[o] = true
				continue
			}
			if base && !ok || !base && ok {
				rule.Owners = append(rule.Owners, o)
			}
		}
		// A rule that changes nothing is left out: allowed everywhere.
		if base && len(rule.Owners) == 0 {
			continue
		}
		f.Labels = append(f.Labels, rule)
	}
	// An owner found per-row late (by a label probe) leaves the lists.
	if len(perRow) > 0 {
		drop := func(os []string) []string {
			return slices.DeleteFunc(os, func(o string) bool { return perRow[o] })
		}
		f.Owners = drop(f.Owners)
		for i := range f.Labels {
			f.Labels[i].Owners = drop(f.Labels[i].Owners)
		}
		if f.All {
			// Excluded from the owner condition: admitted by id only.
			f.Except = drop(f.Except)
			for o := range perRow {
				f.Except = append(f.Except, o)
			}
		}
		f.PerRow = slices.Sorted(maps.Keys(perRow))
	}
	if err := a.joint(ctx, &f, anyOK); err != nil {
		return Filter{}, err
	}
	slices.Sort(f.Except)
	slices.Sort(f.Owners)
	if len(f.Owners) > MaxFilterOwners || len(f.Except) > MaxFilterOwners || len(f.PerRow) > MaxFilterOwners {
		return Filter{}, fmt.Errorf("narrowing: more than %d owners: %w", MaxFilterOwners, ErrUndecidable)
	}
	for id := range policies {
		f.Policies = append(f.Policies, id)
	}
	slices.Sort(f.Policies)
	if len(f.Policies) == 0 {
		f.Policies = []string{PolicyNone}
	}
	return f, nil
}

// joint extends f to the resources that name several patients (their
// owner is "Joint/<h>", a key of their own): such a resource passes an
// owner condition or a label rule when every patient it names does, and
// is decided per row when one of them is.
func (a *Authorizer) joint(ctx context.Context, f *Filter, anyOK bool) error {
	mentioned := slices.Concat(f.Owners, f.Except, f.PerRow)
	for _, r := range f.Labels {
		mentioned = append(mentioned, r.Owners...)
	}
	mentioned = slices.DeleteFunc(slices.Clone(mentioned), func(o string) bool { return !strings.HasPrefix(o, ident.PatientPrefix) })
	slices.Sort(mentioned)
	mentioned = slices.Compact(mentioned)
	if len(mentioned) == 0 {
		return nil
	}
	joints, err := a.src.JointOwners(ctx, mentioned, MaxFilterOwners+1)
	if err != nil {
		return fmt.Errorf("narrowing: loading joint owners: %w: %w", ErrUndecidable, err)
	}
	if len(joints) > MaxFilterOwners {
		return fmt.Errorf("narrowing: more than %d joint owners: %w", MaxFilterOwners, ErrUndecidable)
	}
	in := func(list []string, o string) bool { _, ok := slices.BinarySearch(list, o); return ok }
	sortedCopy := func(l []string) []string { c := slices.Clone(l); slices.Sort(c); return c }
	owners, except, perRow := sortedCopy(f.Owners), sortedCopy(f.Except), sortedCopy(f.PerRow)
	for _, j := range slices.Sorted(maps.Keys(joints)) {
		members := joints[j]
		anyIn := func(list []string) bool {
			return slices.ContainsFunc(members, func(m string) bool { return in(list, m) })
		}
		allIn := func(list ...[]string) bool {
			return !slices.ContainsFunc(members, func(m string) bool {
				return !slices.ContainsFunc(list, func(l []string) bool { return in(l, m) })
			})
		}
		switch {
		case anyOK && anyIn(except) && !anyIn(perRow):
			f.Except = append(f.Except, j) // a member is denied outright
		case !anyOK && !allIn(owners, perRow):
			// a member is not allowed: nothing to add
		case anyIn(perRow):
			f.PerRow = append(f.PerRow, j)
			if anyOK {
				f.Except = append(f.Except, j)
			}
		case !anyOK:
			f.Owners = append(f.Owners, j)
		}
		for i := range f.Labels {
			r := &f.Labels[i]
			ro := sortedCopy(r.Owners)
			if r.Except && anyIn(ro) || !r.Except && allIn(ro) {
				r.Owners = append(r.Owners, j)
			}
		}
	}
	slices.Sort(f.PerRow)
	return nil
}

// restricted returns the patients whose decisions may differ from an
// unrelated patient's: those with a Consent, or flagged VIP/employee.
func (a *Authorizer) restricted(ctx context.Context) ([]string, error) {
	g, now := a.fgen.Load(), a.now()
	a.mu.Lock()
	e := a.restrC
	a.mu.Unlock()
	if e != nil && e.gen == g && now.Sub(e.loaded) < a.ttl {
		return e.owners, nil
	}
	if noIO(ctx) {
		return nil, &NeedsFacts{Filter: "Patient"}
	}
	var out []string
	for _, q := range []struct{ typ, label string }{{"Consent", ""}, {"Patient", "tag:VIP"}, {"Patient", "tag:EMP"}, {"Patient", "tag:employee"}, {"Patient", "VIP"}, {"Patient", "EMP"}} {
		os, err := a.src.OwnersOf(ctx, q.typ, q.label, maxRestricted+1)
		if err != nil {
			return nil, fmt.Errorf("loading restricted patients: %w: %w", ErrUndecidable, err)
		}
		out = append(out, os...)
	}
	if len(out) > maxRestricted {
		return nil, fmt.Errorf("loading restricted patients: more than %d: %w", maxRestricted, ErrUndecidable)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	a.mu.Lock()
	a.restrC = &restrictedEntry{gen: g, loaded: now, owners: out}
	a.mu.Unlock()
	return out, nil
}
