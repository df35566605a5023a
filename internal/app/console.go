package app

import (
	"context"
	"log/slog"

	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/webui"
)

// console wires the web UI's administration console to the services the
// JSON admin API uses (Accounts, the review Desk), so a change made in
// the console is audited exactly as one made through /admin/api.
func (a *App) console(sq *sqldb.Store) webui.Console {
	c := webui.Console{
		LastVerification: func(ctx context.Context) (webui.Verification, error) {
			v, err := sq.LastVerification(ctx, false)
			if err != nil {
				return webui.Verification{}, err
			}
			return webui.Verification{Finished: v.Finished, Size: v.Size, OK: v.OK, Detail: v.Detail}, nil
		},
	}
	c.PolicyVersions = func(ctx context.Context, limit int) ([]webui.PolicyVersion, error) {
		vs, err := sq.Authz().PolicyVersions(ctx, limit)
		if err != nil {
			return nil, err
		}
		out := make([]webui.PolicyVersion, len(vs))
		for i, v := range vs {
			out[i] = webui.PolicyVersion{Seq: v.Seq, Hash: v.Hash, Source: v.Source, Created: v.Created}
		}
		return out, nil
	}
	if acc, err := a.Accounts(); err == nil {
		c.Accounts = acc
	} else {
		a.logger.Error("console: account administration unavailable", slog.String("error", err.Error()))
	}
	c.Clients = a.ClientAdmin()
	c.Backups = a.BackupStatus
	if a.AuditIndex != nil {
		c.AuditLog = a.AuditIndex
	}
	if a.Desk != nil {
		c.Reviews = a.Desk
	}
	return c
}
