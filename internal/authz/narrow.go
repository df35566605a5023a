package authz

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/authn"
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
// passes the rule.
type Filter struct {
	All    bool     // every owner, except Except
	Owners []string // when !All: the owners allowed ("Patient/<id>", "org")
	Except []string // when All: the owners excluded
	Labels []LabelRule
	// Policies are the ids of the policies that decided the probes.
	Policies []string
	// Purpose is ETREAT when any owner is reached under a grant.
	Purpose string
}

// LabelRule restricts resources carrying Label to owners in Owners
// (Except false) or not in Owners (Except true).
type LabelRule struct {
	Label  string
	Owners []string
	Except bool
}

// Nothing reports whether the filter admits no resource at all.
func (f Filter) Nothing() bool { return !f.All && len(f.Owners) == 0 }

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
// team, encounter, grant, own record) and "org" in turn. Then each
// FilterLabels label is probed the same way.
func (a *Authorizer) Narrow(ctx context.Context, p authn.Principal, action Action, typ string) (Filter, error) {
	key := filterKey{principal: principalKey(p), action: action, typ: typ}
	g, now := a.gen.Load()<<32^a.fgen.Load(), a.now()
	a.mu.Lock()
	e, ok := a.filterC[key]
	a.mu.Unlock()
	// Inside a write transaction (conditional matching) a filter younger
	// than filterTTL serves even after a write elsewhere: see subjectOf.
	if ok && (e.gen == g || noIO(ctx)) && now.Sub(e.loaded) < filterTTL {
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
	decide := func(owner string, labels []string) (bool, error) {
		d, err := a.decide(ctx, s, action, Target{Type: typ, Owner: owner, Labels: labels})
		if err != nil {
			return false, err
		}
		if d.Allowed {
			for _, id := range d.Policies {
				policies[id] = true
			}
			if d.Purpose != "" {
				f.Purpose = d.Purpose
			}
		}
		return d.Allowed, nil
	}
	related := s.facts.Related(now)
	if s.patient != "" {
		related = append(related, s.patient)
	}
	anyOK, err := decide(anyPatient, nil)
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
		ok, err := decide(o, nil)
		if err != nil {
			return Filter{}, err
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
	if anyOK && !allowed[OrgOwner] {
		f.Except = append(f.Except, OrgOwner)
	}
	if len(f.Owners) > MaxFilterOwners || len(f.Except) > MaxFilterOwners {
		return Filter{}, fmt.Errorf("narrowing: more than %d owners: %w", MaxFilterOwners, ErrUndecidable)
	}
	for _, l := range FilterLabels {
		labels := []string{l}
		base := false
		if anyOK {
			if base, err = decide(anyPatient, labels); err != nil {
				return Filter{}, err
			}
		}
		rule := LabelRule{Label: l, Except: base}
		for _, o := range candidates {
			if !allowed[o] {
				continue // the owner is excluded anyway
			}
			ok, err := decide(o, labels)
			if err != nil {
				return Filter{}, err
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
	for id := range policies {
		f.Policies = append(f.Policies, id)
	}
	slices.Sort(f.Policies)
	if len(f.Policies) == 0 {
		f.Policies = []string{PolicyNone}
	}
	return f, nil
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
