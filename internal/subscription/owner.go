package subscription

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// ErrOwnerGone means a subscription's owner can no longer act: the
// account is disabled or removed, or the API token was revoked or
// removed. Delivery stops.
var ErrOwnerGone = errors.New("subscription: the owner can no longer be authorized")

// Users finds accounts (identity.Directory satisfies it).
type Users interface {
	ByID(ctx context.Context, id string) (identity.User, error)
}

// Tokens finds API tokens by id, revoked ones included (the SQL store
// implements it); an unknown id is an error wrapping storage.ErrNotFound.
type Tokens interface {
	TokenByID(ctx context.Context, id string) (storage.APIToken, error)
}

// Owner is who a subscription belongs to.
type Owner struct {
	Kind string // OwnerToken, OwnerAccount, or "" (none supported)
	ID   string
}

// serviceAgent is the agent of the service's own writes (a
// Subscription's status) and of its delivery events' client.
const serviceClient = "subscriptions"

// ServiceAgent is the audit agent of the subscription service's own
// writes of a Subscription's status.
var ServiceAgent = audit.Agent{User: "phivault", Client: serviceClient}

// ownerOf reads who wrote a Subscription from its write's audit event:
// the agent the HTTP API records (httpapi callerFor) is the principal's
// id with its kind as the client for API tokens and sessions; a SMART
// app records its client id there, the web UI "webui", offline commands
// "cli", and those are not supported owners (fail closed: the
// subscription goes to error). self reports the service's own write.
func ownerOf(a audit.Agent) (o Owner, self bool) {
	switch {
	case a == ServiceAgent:
		return Owner{}, true
	case a.Client == string(authn.KindToken) && a.User != "":
		return Owner{Kind: OwnerToken, ID: a.User}, false
	case a.Client == string(authn.KindSession) && a.User != "":
		return Owner{Kind: OwnerAccount, ID: a.User}, false
	}
	return Owner{}, false
}

// resolver re-resolves an owner into a principal at each delivery.
type resolver struct {
	users  Users
	tokens Tokens
}

// principal returns the owner's principal as it stands now: its current
// roles, refused (ErrOwnerGone) when it can no longer act. Any other
// error is an outage (retry later).
func (r resolver) principal(ctx context.Context, o Owner) (authn.Principal, error) {
	switch o.Kind {
	case OwnerAccount:
		u, err := r.users.ByID(ctx, o.ID)
		if errors.Is(err, identity.ErrNotFound) || errors.Is(err, storage.ErrNotFound) {
			return authn.Principal{}, ErrOwnerGone
		}
		if err != nil {
			return authn.Principal{}, fmt.Errorf("loading the subscription's owner: %w", err)
		}
		if u.Disabled {
			return authn.Principal{}, ErrOwnerGone
		}
		roles := make([]string, len(u.Roles))
		for i, rl := range u.Roles {
			roles[i] = string(rl)
		}
		// A session of the account with its second factor: the account
		// created the subscription signed in, through the MFA gate.
		return authn.Principal{Kind: authn.KindSession, ID: u.ID, Name: u.Username, Roles: roles, MFA: true}, nil
	case OwnerToken:
		t, err := r.tokens.TokenByID(ctx, o.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return authn.Principal{}, ErrOwnerGone
		}
		if err != nil {
			return authn.Principal{}, fmt.Errorf("loading the subscription's owner: %w", err)
		}
		if t.Revoked {
			return authn.Principal{}, ErrOwnerGone
		}
		return authn.Principal{Kind: authn.KindToken, ID: t.ID, Name: t.Name, Roles: t.Roles}, nil
	}
	return authn.Principal{}, ErrOwnerGone
}

// owns reports whether p is the owner o (a websocket bind).
func (o Owner) owns(p authn.Principal) bool {
	switch o.Kind {
	case OwnerAccount:
		return p.Kind == authn.KindSession && p.ID == o.ID
	case OwnerToken:
		return p.Kind == authn.KindToken && p.ID == o.ID
	}
	return false
}
