package portal

import (
	"context"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/privacy"
)

// Trail records what the privacy office and the patients read that no
// other service records (privacy.Trail): a lookup of staff by name, and
// a file made from audit events or from the record. Both return an
// error wrapping audit.ErrUnavailable when the event could not be
// recorded; the page then shows nothing and writes no file.
type Trail interface {
	Staff(ctx context.Context, by privacy.Actor, dir identity.Directory, name string) ([]identity.User, error)
	Export(ctx context.Context, by privacy.Actor, e privacy.Export) error
}
