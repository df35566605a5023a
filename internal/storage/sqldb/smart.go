package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage"
)

var _ smart.Store = (*Smart)(nil)

// Smart implements smart.Store on the smart_* tables (migration 0006).
// Only the SHA-256 of each access token is stored. It is safe for
// concurrent use.
type Smart struct{ s *Store }

// Smart returns the SMART authorization server store over this database.
func (s *Store) Smart() *Smart { return &Smart{s: s} }

// smartErr adds smart's sentinels to storage's.
func smartErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return &kindError{kind: smart.ErrNotFound, err: err}
	case errors.Is(err, storage.ErrConflict):
		return &kindError{kind: smart.ErrExists, err: err}
	}
	return err
}

// clientCols are the columns scanClient reads, in its order.
const clientCols = `id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled, approval, registered_by, approved_by, purpose`

// clientFields are the MAC'd columns of a live smart_clients row (ADR
// 0022), as stored: everything that decides what the client may obtain
// and where tokens go. A disabled client grants nothing and is not
// checked; disabling clears the MAC, so a client re-enabled in SQL
// never verifies again.
//
// The purpose of use (migration 0035) is MAC'd when set, so rows made
// before it keep their MACs and a purpose cannot be added or changed in
// SQL.
func clientFields(typ, jwks, jwksURL, uris, scopes string, disabled bool, approval, registeredBy, approvedBy, purpose string) [][]byte {
	f := [][]byte{macStr(typ), macStr(jwks), macStr(jwksURL), macStr(uris), macStr(scopes), macBool(disabled),
		macStr(approval), macStr(registeredBy), macStr(approvedBy)}
	if purpose != "" {
		f = append(f, macStr("purpose="+purpose))
	}
	return f
}

// errTamperedClient marks a client row whose MAC does not verify.
var errTamperedClient = errors.New("client row failed its MAC")

// scanClient reads one row of clientCols (and mac). A live client whose
// MAC does not verify (row authentication on) is errTamperedClient,
// after an integrity alarm.
func scanClient(s *Store, rows *sql.Rows) (smart.Client, error) {
	var c smart.Client
	var typ, jwks, uris, scopes, approval string
	var created int64
	var mac []byte
	if err := rows.Scan(&c.ID, &c.Name, &typ, &jwks, &c.JWKSURL, &uris, &scopes, &created, &c.Disabled, &approval, &c.RegisteredBy, &c.ApprovedBy, &c.Purpose, &mac); err != nil {
		return smart.Client{}, err
	}
	if !c.Disabled && !s.rowOK(mac, "smart_clients", c.ID, clientFields(typ, jwks, c.JWKSURL, uris, scopes, c.Disabled, approval, c.RegisteredBy, c.ApprovedBy, c.Purpose)...) {
		return smart.Client{}, errTamperedClient
	}
	c.Type, c.Created, c.Approval = smart.ClientType(typ), fromMicros(created), smart.ClientApproval(approval)
	if jwks != "" {
		c.JWKS = []byte(jwks)
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return smart.Client{}, fmt.Errorf("client %s: decoding redirect uris: %w", c.ID, err)
	}
	var err error
	if c.Scopes, err = scope.ParseSet(scopes); err != nil {
		return smart.Client{}, fmt.Errorf("client %s: stored scopes: %w", c.ID, err)
	}
	return c, nil
}

// CreateClient implements smart.ClientStore. It stores c as given, its
// approval state included: that is the caller's decision
// (smart.Registry, smart.Admin), so only trusted in-process code
// holds this capability; it creates no approval request. An approval
// state that is not one of smart's is refused.
func (ss *Smart) CreateClient(ctx context.Context, c smart.Client) error {
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		return stx.(*tx).insertClient(ctx, c)
	}))
}

// insertClient validates and inserts c.
func (t *tx) insertClient(ctx context.Context, c smart.Client) error {
	const op = "create client"
	for _, f := range []struct{ name, v string }{{"id", c.ID}, {"name", c.Name}, {"type", string(c.Type)}} {
		if err := validText(op+": "+f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"jwks url", c.JWKSURL}, {"registered by", c.RegisteredBy}, {"approved by", c.ApprovedBy}, {"purpose", c.Purpose}} {
		if f.v == "" {
			continue
		}
		if err := validText(op+": "+f.name, f.v); err != nil {
			return err
		}
	}
	if !c.Approval.Valid() {
		return fmt.Errorf("%s: unknown approval state %q", op, c.Approval)
	}
	uris := c.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	ru, err := json.Marshal(uris)
	if err != nil {
		return fmt.Errorf("%s: encoding redirect uris: %w", op, err)
	}
	var mac []byte
	if !c.Disabled {
		mac = t.s.rowMAC("smart_clients", c.ID, clientFields(string(c.Type), string(c.JWKS), c.JWKSURL, string(ru), c.Scopes.String(),
			c.Disabled, string(c.Approval), c.RegisteredBy, c.ApprovedBy, c.Purpose)...)
	}
	const q = `INSERT INTO smart_clients (` + clientCols + `, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err = t.exec(ctx, q, c.ID, c.Name, string(c.Type), string(c.JWKS), c.JWKSURL, string(ru), c.Scopes.String(),
		c.Created.UnixMicro(), c.Disabled, string(c.Approval), c.RegisteredBy, c.ApprovedBy, c.Purpose, mac)
	return t.s.translate(op, err)
}

// remacClient recomputes the MAC of live client id from its stored
// columns. Call it only after changing a row that was read and verified
// (and locked) in the same transaction.
func (t *tx) remacClient(ctx context.Context, op, id string) error {
	a := t.s.auth.Load()
	if a == nil {
		return nil
	}
	return t.macClient(ctx, op, id, a.key)
}

// macClient sets the MAC of client id under key from its stored columns.
func (t *tx) macClient(ctx context.Context, op, id string, key RowAuth) error {
	rows, err := t.query(ctx, `SELECT type, jwks, jwks_url, redirect_uris, scopes, disabled, approval, registered_by, approved_by, purpose FROM smart_clients WHERE id = ?`, id)
	if err != nil {
		return t.s.translate(op, err)
	}
	var typ, jwks, jwksURL, uris, scopes, approval, regBy, apprBy, purpose string
	var disabled bool
	found := rows.Next()
	if found {
		err = rows.Scan(&typ, &jwks, &jwksURL, &uris, &scopes, &disabled, &approval, &regBy, &apprBy, &purpose)
	}
	if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return t.s.translate(op, err)
	}
	if !found {
		return smartErr(wrapOp(op, storage.ErrNotFound))
	}
	var mac []byte
	if !disabled {
		mac = key.MAC("smart_clients", id, clientFields(typ, jwks, jwksURL, uris, scopes, disabled, approval, regBy, apprBy, purpose)...)
	}
	_, err = t.exec(ctx, `UPDATE smart_clients SET mac = ? WHERE id = ?`, mac, id)
	return t.s.translate(op, err)
}

// Client implements smart.ClientStore.
func (ss *Smart) Client(ctx context.Context, id string) (smart.Client, error) {
	if !lookupable(id) {
		return smart.Client{}, smartErr(wrapOp("client", storage.ErrNotFound))
	}
	rows, err := ss.s.r().query(ctx, `SELECT `+clientCols+`, mac FROM smart_clients WHERE id = ?`, id)
	return oneClient(ss.s, "client", rows, err)
}

// oneClient reads the one client of rows (smart.ErrNotFound if none).
func oneClient(s *Store, op string, rows *sql.Rows, err error) (smart.Client, error) {
	if err != nil {
		return smart.Client{}, s.translate(op, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return smart.Client{}, s.translate(op, err)
		}
		return smart.Client{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	c, err := scanClient(s, rows)
	if errors.Is(err, errTamperedClient) {
		return smart.Client{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	if err != nil {
		return smart.Client{}, s.translate(op, err)
	}
	return c, s.translate(op, rows.Err())
}

// UseJTI implements smart.ReplayStore. It deletes expired jtis first, so
// the table holds at most the assertions of the last few minutes.
func (ss *Smart) UseJTI(ctx context.Context, clientID, jti string, expires, now time.Time) error {
	if !lookupable(clientID) || !lookupable(jti) {
		return errors.New("use jti: malformed client id or jti")
	}
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if _, err := t.exec(ctx, `DELETE FROM smart_assertion_jtis WHERE expires < ?`, now.UnixMicro()); err != nil {
			return t.s.translate("use jti", err)
		}
		rows, err := t.query(ctx, `SELECT 1 FROM smart_assertion_jtis WHERE client_id = ? AND jti = ?`, clientID, jti)
		if err != nil {
			return t.s.translate("use jti", err)
		}
		found := rows.Next()
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return t.s.translate("use jti", err)
		}
		if found {
			return smart.ErrReplay
		}
		// A concurrent insert of the same pair fails on the primary key:
		// ErrConflict, mapped to ErrReplay below.
		_, err = t.exec(ctx, `INSERT INTO smart_assertion_jtis (client_id, jti, expires) VALUES (?, ?, ?)`,
			clientID, jti, expires.UnixMicro())
		return t.s.translate("use jti", err)
	})
	if err != nil && !errors.Is(err, smart.ErrReplay) && errors.Is(err, storage.ErrConflict) {
		return &kindError{kind: smart.ErrReplay, err: err}
	}
	return err
}

// PutToken implements smart.TokenStore; it deletes tokens that expired
// before t.Issued.
func (ss *Smart) PutToken(ctx context.Context, tk smart.Token) error {
	if len(tk.Hash) == 0 {
		return errors.New("put token: empty hash")
	}
	if !lookupable(tk.ClientID) {
		return smartErr(wrapOp("put token: client", storage.ErrNotFound))
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if _, err := t.exec(ctx, `DELETE FROM smart_access_tokens WHERE expires < ?`, tk.Issued.UnixMicro()); err != nil {
			return t.s.translate("put token", err)
		}
		scopes := tk.Scopes.String()
		var mac []byte
		if !tk.Revoked {
			mac = t.s.hashMAC("smart_access_tokens", tk.Hash, accessFields(tk.ClientID, scopes, tk.Issued.UnixMicro(), tk.Expires.UnixMicro(), tk.Authorization)...)
		}
		const q = `INSERT INTO smart_access_tokens (token_hash, client_id, scopes, issued, expires, revoked, authz_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
		_, err := t.exec(ctx, q, tk.Hash, tk.ClientID, scopes, tk.Issued.UnixMicro(), tk.Expires.UnixMicro(), tk.Revoked, tk.Authorization, mac)
		return t.s.translate("put token", err)
	}))
}

// TokenByHash implements smart.TokenStore.
func (ss *Smart) TokenByHash(ctx context.Context, hash []byte) (smart.Token, error) {
	if len(hash) == 0 || len(hash) > 64 {
		return smart.Token{}, smartErr(wrapOp("token by hash", storage.ErrNotFound))
	}
	// An App Launch token carries its authorization (user, patient,
	// family revocation) through the join; a backend token has none.
	const q = `SELECT t.token_hash, t.client_id, t.scopes, t.issued, t.expires, t.revoked, t.authz_id, t.mac, ` + authzColumns + `
FROM smart_access_tokens t LEFT JOIN smart_authorizations a ON a.id = t.authz_id WHERE t.token_hash = ?`
	rows, err := ss.s.r().query(ctx, q, hash)
	if err != nil {
		return smart.Token{}, ss.s.translate("token by hash", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return smart.Token{}, ss.s.translate("token by hash", err)
		}
		return smart.Token{}, smartErr(wrapOp("token by hash", storage.ErrNotFound))
	}
	var tk smart.Token
	var scopes string
	var issued, expires int64
	var a nullAuthorization
	var mac []byte
	if err := rows.Scan(append([]any{&tk.Hash, &tk.ClientID, &scopes, &issued, &expires, &tk.Revoked, &tk.Authorization, &mac}, a.dest()...)...); err != nil {
		return smart.Token{}, ss.s.translate("token by hash", err)
	}
	if !tk.Revoked && !ss.s.hashRowOK(mac, "smart_access_tokens", tk.Hash, accessFields(tk.ClientID, scopes, issued, expires, tk.Authorization)...) {
		return smart.Token{}, smartErr(wrapOp("token by hash", storage.ErrNotFound))
	}
	if tk.Authorization != "" {
		la, err := a.authorization(ss.s)
		if err != nil {
			return smart.Token{}, fmt.Errorf("token by hash: %w", err)
		}
		tk.Launch = &la
	}
	tk.Issued, tk.Expires = fromMicros(issued), fromMicros(expires)
	if tk.Scopes, err = scope.ParseSet(scopes); err != nil {
		return smart.Token{}, fmt.Errorf("token by hash: stored scopes: %w", err)
	}
	return tk, rows.Err()
}

// RevokeToken implements smart.TokenStore.
func (ss *Smart) RevokeToken(ctx context.Context, hash []byte) error {
	if len(hash) == 0 || len(hash) > 64 {
		return smartErr(wrapOp("revoke token", storage.ErrNotFound))
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `UPDATE smart_access_tokens SET revoked = ?, mac = NULL WHERE token_hash = ?`, true, hash)
		if err != nil {
			return t.s.translate("revoke token", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("revoke token", err)
		}
		if n == 0 {
			return wrapOp("revoke token", storage.ErrNotFound)
		}
		return nil
	}))
}
