package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// ActiveGrant returns userID's unexpired break-the-glass grant on
// patient ("Patient/<id>") at the Authorizer's now, and whether there
// is one; with several, the one that lasts longest. It reads the grant
// store directly (never the cached facts), so a page that shows the
// grant shows what the store holds now. Errors are storage errors.
func (a *Authorizer) ActiveGrant(ctx context.Context, userID, patient string) (Grant, bool, error) {
	now := a.now()
	gs, err := a.grants.ActiveGrants(ctx, userID, now)
	if err != nil {
		return Grant{}, false, fmt.Errorf("loading grants: %w", err)
	}
	var best Grant
	var found bool
	for _, g := range gs {
		if g.Covers(patient, now) && (!found || g.Expires.After(best.Expires)) {
			best, found = g, true
		}
	}
	return best, found, nil
}

// Affiliation returns the name of the organisation a practitioner acts
// for, from its PractitionerRole (the same fact the policies use), or ""
// when fhirUser is not a practitioner or has none. The patient's "who
// accessed my record" shows it; it reads directory data, not PHI.
func (a *Authorizer) Affiliation(ctx context.Context, fhirUser string) (string, error) {
	if !strings.HasPrefix(fhirUser, "Practitioner/") {
		return "", nil
	}
	uf, err := a.loadUserFacts(ctx, fhirUser, a.now())
	if err != nil || uf.Organization == "" {
		return "", err
	}
	_, id, _ := strings.Cut(uf.Organization, "/")
	f, found, err := a.src.Resource(ctx, "Organization", id)
	if err != nil || !found {
		return uf.Organization, nil // the reference, when the resource cannot be read
	}
	var org struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(f.JSON, &org) != nil || strings.TrimSpace(org.Name) == "" {
		return uf.Organization, nil
	}
	return org.Name, nil
}
