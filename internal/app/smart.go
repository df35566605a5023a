package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/identity"
)

// jwksTimeout bounds fetching a backend client's published JWK Set.
const jwksTimeout = 10 * time.Second

// auditRecorder makes an audit event durable through the group-commit
// batcher; it is how services outside the record layer audit.
type auditRecorder struct {
	log   *audit.Log
	batch *audit.Batcher
}

func (r auditRecorder) Record(ctx context.Context, ev audit.Event) error {
	rec, err := r.log.Seal(ev)
	if err != nil {
		return err
	}
	return r.batch.Record(ctx, rec)
}

// openSMART builds the SMART on FHIR authorization server (Backend
// Services). It needs the public base URL, which token assertions must
// name as their audience; without one, SMART is off.
func (a *App) openSMART(ctx context.Context, now func() time.Time) error {
	if a.Config.Server.BaseURL == "" {
		return nil
	}
	sq := a.db
	s, err := smart.New(sq.Smart(), smart.Options{
		BaseURL:    a.Config.Server.BaseURL,
		HTTPClient: &http.Client{Timeout: jwksTimeout},
		Audit:      auditRecorder{log: a.Log, batch: a.batcher},
		Launch:     sq.Smart(),
		Sealer:     a.Keys,
		Users:      activeUsers{sq.Users()},
		Logger:     a.logger,
		Now:        now,
	})
	if err != nil {
		return fmt.Errorf("starting the SMART authorization server (server.base_url): %w", err)
	}
	if err := s.LoadSigningKey(ctx); err != nil {
		return fmt.Errorf("starting the SMART authorization server: %w", err)
	}
	a.SMART = s
	return nil
}

// activeUsers tells the SMART server whether the user behind an App
// Launch authorization may still refresh it: enabled, and still holding
// every role it was approved with (a role removed since ends the grant
// as it ends the user's sessions).
type activeUsers struct{ dir identity.Directory }

func (u activeUsers) UserActive(ctx context.Context, id string, roles []string) (bool, error) {
	usr, err := u.dir.ByID(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if usr.Disabled {
		return false, nil
	}
	for _, r := range roles {
		if !slices.Contains(usr.Roles, identity.Role(r)) {
			return false, nil
		}
	}
	return true, nil
}
