package authz

import (
	"context"
	"fmt"
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
