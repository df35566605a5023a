package sqldb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// Client administration for the web console: list, audited registration
// and audited disabling. Each change commits with its audit record.

// MaxClientList bounds one listing of clients.
const MaxClientList = 500

// Clients lists up to limit clients (1..MaxClientList), newest first.
func (ss *Smart) Clients(ctx context.Context, limit int) ([]smart.Client, error) {
	if limit < 1 || limit > MaxClientList {
		limit = MaxClientList
	}
	const q = `SELECT id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled FROM smart_clients ORDER BY created DESC, id LIMIT ?`
	rows, err := ss.s.r().query(ctx, q, limit)
	if err != nil {
		return nil, ss.s.translate("list clients", err)
	}
	defer rows.Close()
	var out []smart.Client
	for rows.Next() {
		var c smart.Client
		var typ, jwks, uris, scopes string
		var created int64
		if err := rows.Scan(&c.ID, &c.Name, &typ, &jwks, &c.JWKSURL, &uris, &scopes, &created, &c.Disabled); err != nil {
			return nil, ss.s.translate("list clients", err)
		}
		c.Type, c.Created = smart.ClientType(typ), fromMicros(created)
		if jwks != "" {
			c.JWKS = []byte(jwks)
		}
		if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
			return nil, fmt.Errorf("client %s: decoding redirect uris: %w", c.ID, err)
		}
		if c.Scopes, err = scope.ParseSet(scopes); err != nil {
			return nil, fmt.Errorf("client %s: stored scopes: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, ss.s.translate("list clients", rows.Err())
}

// AuditedClients is a smart.ClientStore whose CreateClient commits the
// audit record made by Seal with the client, in one transaction.
type AuditedClients struct {
	*Smart
	Seal func(c smart.Client) (storage.AuditRecord, error)
	// Alert, if not nil, returns an alert to raise with the client, in
	// the same transaction (nil: none).
	Alert func(c smart.Client) *authz.Alert
}

// CreateClient implements smart.ClientStore with the audit record.
func (ac AuditedClients) CreateClient(ctx context.Context, c smart.Client) error {
	rec, err := ac.Seal(c)
	if err != nil {
		return err
	}
	uris := c.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	ru, err := json.Marshal(uris)
	if err != nil {
		return fmt.Errorf("create client: encoding redirect uris: %w", err)
	}
	for _, f := range []string{c.ID, c.Name, string(c.Type), c.JWKSURL} {
		if f == "" {
			continue
		}
		if err := validText("create client", f); err != nil {
			return err
		}
	}
	return smartErr(ac.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const q = `INSERT INTO smart_clients (id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
		if _, err := t.exec(ctx, q, c.ID, c.Name, string(c.Type), string(c.JWKS), c.JWKSURL, string(ru), c.Scopes.String(),
			c.Created.UnixMicro(), c.Disabled); err != nil {
			return t.s.translate("create client", err)
		}
		if ac.Alert != nil {
			if a := ac.Alert(c); a != nil {
				if err := t.putAlert(ctx, *a); err != nil {
					return err
				}
			}
		}
		return stx.AppendAudit(ctx, rec)
	}))
}

// DisableClientAudited disables client id with its audit record in one
// transaction. Errors wrap smart.ErrNotFound for an unknown client.
func (ss *Smart) DisableClientAudited(ctx context.Context, id string, rec storage.AuditRecord) error {
	if !lookupable(id) {
		return smartErr(wrapOp("disable client", storage.ErrNotFound))
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `UPDATE smart_clients SET disabled = ? WHERE id = ?`, true, id)
		if err != nil {
			return t.s.translate("disable client", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("disable client", err)
		}
		if n == 0 {
			return wrapOp("disable client", storage.ErrNotFound)
		}
		return stx.AppendAudit(ctx, rec)
	}))
}
