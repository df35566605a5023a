package app

import (
	"context"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
)

// Directory is the read capability over accounts, for the CLI's lookups
// by username; it never changes an account.
func (a *App) Directory() identity.Directory { return a.db.Users() }

// PolicyVersions lists the policy sets that came into force, newest
// first, at most limit (1..500; outside that range, 500).
func (a *App) PolicyVersions(ctx context.Context, limit int) ([]authz.PolicyVersion, error) {
	return a.db.Authz().PolicyVersions(ctx, limit)
}

// PolicyExplainer answers "phivault policy explain", audited like a
// decision.
func (a *App) PolicyExplainer() *authz.Explainer {
	return authz.NewExplainer(a.Authz, a.Log, a.batcher)
}

// Operator is the record service for the trusted offline commands
// (import, demo seeding, reindex) run by user: every access allowed and
// audited as offline (record.Operator).
func (a *App) Operator(user string) *record.Operator { return record.NewOperator(a.Record, user) }
