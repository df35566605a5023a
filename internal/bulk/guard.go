package bulk

import (
	"context"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
)

// PolicyReadOnly is recorded if anything an export runs tried to write.
const PolicyReadOnly = "bulk-export-read-only"

// exportGuard is the guard an export searches with: the client's own
// authz guard (bound to a principal that carries the registered purpose
// of use), with every read the search engine decides (search, read,
// compartment checks) decided as authz.Export instead. The policies
// then treat the access as a disclosure: patient Consents, sensitivity
// labels and 42 CFR Part 2 bind it (the service-credential exemption
// does not cover export), and narrowing is computed for that action.
type exportGuard struct{ g record.Guard }

var _ record.Guard = exportGuard{}

func exportAction(a authz.Action) authz.Action {
	switch a {
	case authz.Read, authz.VRead, authz.Search, authz.Everything, authz.History, authz.HistoryType:
		return authz.Export
	}
	return a
}

func (e exportGuard) Decide(ctx context.Context, a authz.Action, t authz.Target) (authz.Decision, error) {
	switch a {
	case authz.Create, authz.Update, authz.Delete, authz.Erase, authz.Relabel, authz.OpenGrant:
		return authz.Decision{Policies: []string{PolicyReadOnly}}, authz.ErrDenied // an export writes nothing
	}
	return e.g.Decide(ctx, exportAction(a), t)
}

func (e exportGuard) Narrow(ctx context.Context, a authz.Action, typ string) (authz.Filter, error) {
	return e.g.Narrow(ctx, exportAction(a), typ)
}
