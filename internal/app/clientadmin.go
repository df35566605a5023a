package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// ClientAdmin is SMART client administration for the web console:
// list, register and disable, each change committed with its audit event
// (client-register, client-disable; entity "Client/<id>") in one
// transaction. Disabling also stops the client's issued tokens, which
// are checked against the client on every use. Safe for concurrent use.
type ClientAdmin struct {
	smart *sqldb.Smart
	log   *audit.Log
	now   func() time.Time
}

// ClientAdmin returns the client administration service of a.
func (a *App) ClientAdmin() (*ClientAdmin, error) {
	sq, ok := a.Store.(*sqldb.Store)
	if !ok {
		return nil, errors.New("client administration needs the SQL store")
	}
	return &ClientAdmin{smart: sq.Smart(), log: a.Log, now: time.Now}, nil
}

// List lists up to limit clients, newest first.
func (c *ClientAdmin) List(ctx context.Context, limit int) ([]smart.Client, error) {
	return c.smart.Clients(ctx, limit)
}

func (c *ClientAdmin) registry(actor audit.Agent) (*smart.Registry, error) {
	st := sqldb.AuditedClients{Smart: c.smart, Seal: func(cl smart.Client) (storage.AuditRecord, error) {
		return c.log.Seal(audit.Event{Time: c.now(), Action: audit.ActionClientRegister, Outcome: audit.OutcomeSuccess,
			Agent: actor, Entities: []string{"Client/" + cl.ID}})
	}, Alert: func(cl smart.Client) *authz.Alert {
		if cl.Type != smart.Backend {
			return nil // an App Launch app acts for its signed-in user, within that user's access
		}
		// A backend client is a service credential of its own: whoever
		// holds its key reaches what its system/ scopes allow. The
		// registering administrator may hold it, so the privacy officer
		// is told (ADR 0018; the two-person rule does not cover clients
		// yet).
		by := actor.User
		if by == "" {
			by = actor.Client
		}
		return &authz.Alert{ID: "alr_client_" + cl.ID, Kind: "client-backend-registered", Priority: "high", UserID: by,
			Ref: "Client/" + cl.ID, Created: c.now().UTC()}
	}}
	return smart.NewRegistry(st, smart.RegistryOptions{Now: c.now})
}

// RegisterBackend registers a Backend Services client (smart.Registry's
// validation and errors), audited.
func (c *ClientAdmin) RegisterBackend(ctx context.Context, actor audit.Agent, reg smart.BackendRegistration) (string, error) {
	r, err := c.registry(actor)
	if err != nil {
		return "", err
	}
	return r.RegisterBackend(ctx, reg)
}

// RegisterApp registers an App Launch client (public or confidential),
// audited.
func (c *ClientAdmin) RegisterApp(ctx context.Context, actor audit.Agent, reg smart.AppRegistration) (string, error) {
	r, err := c.registry(actor)
	if err != nil {
		return "", err
	}
	return r.RegisterApp(ctx, reg)
}

// Disable disables client id, audited. Errors wrap smart.ErrNotFound.
func (c *ClientAdmin) Disable(ctx context.Context, actor audit.Agent, id string) error {
	rec, err := c.log.Seal(audit.Event{Time: c.now(), Action: audit.ActionClientDisable, Outcome: audit.OutcomeSuccess,
		Agent: actor, Entities: []string{"Client/" + id}})
	if err != nil {
		return err
	}
	if err := c.smart.DisableClientAudited(ctx, id, rec); err != nil {
		return fmt.Errorf("disable client: %w", err)
	}
	return nil
}
