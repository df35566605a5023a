package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage"
)

var _ smart.LaunchStore = (*Smart)(nil)

// maxHashLen bounds a hash used as a lookup key.
const maxHashLen = 64

func badHash(h []byte) bool { return len(h) == 0 || len(h) > maxHashLen }

// CreateAuthorization implements smart.LaunchStore.
func (ss *Smart) CreateAuthorization(ctx context.Context, a smart.Authorization, c smart.Code) error {
	for _, f := range []struct{ name, v string }{{"id", a.ID}, {"client", a.ClientID}, {"user", a.UserID}, {"redirect uri", c.RedirectURI}, {"challenge", c.Challenge}} {
		if err := validText("create authorization: "+f.name, f.v); err != nil {
			return err
		}
	}
	if badHash(c.Hash) || c.Authorization != a.ID {
		return errors.New("create authorization: malformed code")
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		// Expired codes are useless: drop them as new ones arrive.
		if _, err := t.exec(ctx, `DELETE FROM smart_auth_codes WHERE expires < ?`, a.Created.Add(-smart.CodeRetention).UnixMicro()); err != nil {
			return t.s.translate("create authorization", err)
		}
		roles, scopes := strings.Join(a.Roles, ","), a.Scopes.String()
		var amac []byte
		if !a.Revoked {
			amac = t.s.rowMAC("smart_authorizations", a.ID, authorizationFields(a.ClientID, a.UserID, a.FHIRUser, roles, a.Patient, scopes, a.Created.UnixMicro(), a.Expires.UnixMicro())...)
		}
		const qa = `INSERT INTO smart_authorizations (id, client_id, user_id, fhir_user, roles, patient, scopes, created, expires, revoked, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		if _, err := t.exec(ctx, qa, a.ID, a.ClientID, a.UserID, a.FHIRUser, roles, a.Patient,
			scopes, a.Created.UnixMicro(), a.Expires.UnixMicro(), a.Revoked, amac); err != nil {
			return t.s.translate("create authorization", err)
		}
		cmac := t.s.hashMAC("smart_auth_codes", c.Hash, codeFields(c.Authorization, c.RedirectURI, c.Challenge, c.Nonce, c.Expires.UnixMicro())...)
		const qc = `INSERT INTO smart_auth_codes (code_hash, authz_id, redirect_uri, code_challenge, nonce, expires, used, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
		_, err := t.exec(ctx, qc, c.Hash, c.Authorization, c.RedirectURI, c.Challenge, c.Nonce, c.Expires.UnixMicro(), false, cmac)
		return t.s.translate("create authorization", err)
	}))
}

const authzColumns = `a.id, a.client_id, a.user_id, a.fhir_user, a.roles, a.patient, a.scopes, a.created, a.expires, a.revoked, a.mac`

// errTamperedGrant marks a SMART grant row whose MAC does not verify.
var errTamperedGrant = errors.New("SMART grant row failed its MAC")

type scanner interface{ Scan(dest ...any) error }

// scanAuthorization reads authzColumns; a live authorization whose MAC
// does not verify is errTamperedGrant (after the integrity alarm).
func scanAuthorization(s *Store, sc scanner, extra ...any) (smart.Authorization, error) {
	var a smart.Authorization
	var roles, scopes string
	var created, expires int64
	var mac []byte
	dest := append([]any{&a.ID, &a.ClientID, &a.UserID, &a.FHIRUser, &roles, &a.Patient, &scopes, &created, &expires, &a.Revoked, &mac}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return smart.Authorization{}, err
	}
	if !a.Revoked && !s.rowOK(mac, "smart_authorizations", a.ID, authorizationFields(a.ClientID, a.UserID, a.FHIRUser, roles, a.Patient, scopes, created, expires)...) {
		return smart.Authorization{}, errTamperedGrant
	}
	if roles != "" {
		a.Roles = strings.Split(roles, ",")
	}
	a.Created, a.Expires = fromMicros(created), fromMicros(expires)
	var err error
	if a.Scopes, err = scope.ParseSet(scopes); err != nil {
		return smart.Authorization{}, errors.New("stored authorization scopes do not parse")
	}
	return a, nil
}

// UseCode implements smart.LaunchStore: a compare-and-set on used, so
// one caller wins a race.
func (ss *Smart) UseCode(ctx context.Context, hash []byte) (smart.Code, smart.Authorization, error) {
	if badHash(hash) {
		return smart.Code{}, smart.Authorization{}, smartErr(wrapOp("use code", storage.ErrNotFound))
	}
	var c smart.Code
	var a smart.Authorization
	var reused bool
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		reused = false
		q := `SELECT c.code_hash, c.authz_id, c.redirect_uri, c.code_challenge, c.nonce, c.expires, c.used, c.mac, ` + authzColumns + `
FROM smart_auth_codes c JOIN smart_authorizations a ON a.id = c.authz_id WHERE c.code_hash = ?`
		rows, err := t.query(ctx, q, hash)
		if err != nil {
			return t.s.translate("use code", err)
		}
		found := rows.Next()
		var cmac []byte
		if found {
			var expires int64
			a, err = scanAuthorization(t.s, rowsAfter{rows, []any{&c.Hash, &c.Authorization, &c.RedirectURI, &c.Challenge, &c.Nonce, &expires, &c.Used, &cmac}})
			c.Expires = fromMicros(expires)
		}
		if errors.Is(err, errTamperedGrant) {
			rows.Close()
			return wrapOp("use code", storage.ErrNotFound)
		}
		if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return t.s.translate("use code", err)
		}
		if !found {
			return wrapOp("use code", storage.ErrNotFound)
		}
		if !c.Used && !t.s.hashRowOK(cmac, "smart_auth_codes", c.Hash, codeFields(c.Authorization, c.RedirectURI, c.Challenge, c.Nonce, c.Expires.UnixMicro())...) {
			return wrapOp("use code", storage.ErrNotFound)
		}
		if c.Used {
			reused = true
			return nil
		}
		res, err := t.exec(ctx, `UPDATE smart_auth_codes SET used = ?, mac = NULL WHERE code_hash = ? AND used = ?`, true, hash, false)
		if err != nil {
			return t.s.translate("use code", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			reused = true
		}
		return nil
	})
	if err != nil {
		return smart.Code{}, smart.Authorization{}, smartErr(err)
	}
	if reused {
		return c, a, smart.ErrCodeUsed
	}
	c.Used = true
	return c, a, nil
}

// rowsAfter scans prefix columns into its own destinations, then the rest.
type rowsAfter struct {
	sc     scanner
	prefix []any
}

func (r rowsAfter) Scan(dest ...any) error { return r.sc.Scan(append(r.prefix, dest...)...) }

// Authorization implements smart.LaunchStore.
func (ss *Smart) Authorization(ctx context.Context, id string) (smart.Authorization, error) {
	if !lookupable(id) {
		return smart.Authorization{}, smartErr(wrapOp("authorization", storage.ErrNotFound))
	}
	rows, err := ss.s.r().query(ctx, `SELECT `+authzColumns+` FROM smart_authorizations a WHERE a.id = ?`, id)
	if err != nil {
		return smart.Authorization{}, ss.s.translate("authorization", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return smart.Authorization{}, ss.s.translate("authorization", err)
		}
		return smart.Authorization{}, smartErr(wrapOp("authorization", storage.ErrNotFound))
	}
	a, err := scanAuthorization(ss.s, rows)
	if errors.Is(err, errTamperedGrant) {
		return smart.Authorization{}, smartErr(wrapOp("authorization", storage.ErrNotFound))
	}
	if err != nil {
		return smart.Authorization{}, ss.s.translate("authorization", err)
	}
	return a, rows.Err()
}

// RevokeAuthorization implements smart.LaunchStore. Access tokens are
// revoked through the join in TokenByHash; refresh tokens are marked
// spent as well, so none can rotate again.
func (ss *Smart) RevokeAuthorization(ctx context.Context, id string) error {
	if !lookupable(id) {
		return smartErr(wrapOp("revoke authorization", storage.ErrNotFound))
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `UPDATE smart_authorizations SET revoked = ?, mac = NULL WHERE id = ?`, true, id)
		if err != nil {
			return t.s.translate("revoke authorization", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return wrapOp("revoke authorization", storage.ErrNotFound)
		}
		if _, err := t.exec(ctx, `UPDATE smart_access_tokens SET revoked = ?, mac = NULL WHERE authz_id = ?`, true, id); err != nil {
			return t.s.translate("revoke authorization", err)
		}
		_, err = t.exec(ctx, `UPDATE smart_refresh_tokens SET spent = ?, mac = NULL WHERE authz_id = ?`, true, id)
		return t.s.translate("revoke authorization", err)
	}))
}

// PutRefreshToken implements smart.LaunchStore; it deletes refresh
// tokens that expired before rt.Issued.
func (ss *Smart) PutRefreshToken(ctx context.Context, rt smart.RefreshToken) error {
	if badHash(rt.Hash) || !lookupable(rt.Authorization) {
		return errors.New("put refresh token: malformed token")
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		return putRefresh(ctx, stx.(*tx), rt)
	}))
}

func putRefresh(ctx context.Context, t *tx, rt smart.RefreshToken) error {
	if _, err := t.exec(ctx, `DELETE FROM smart_refresh_tokens WHERE expires < ?`, rt.Issued.UnixMicro()); err != nil {
		return t.s.translate("put refresh token", err)
	}
	var mac []byte
	if !rt.Spent {
		mac = t.s.hashMAC("smart_refresh_tokens", rt.Hash, refreshFields(rt.Authorization, rt.Issued.UnixMicro(), rt.Expires.UnixMicro())...)
	}
	const q = `INSERT INTO smart_refresh_tokens (token_hash, authz_id, issued, expires, spent, mac) VALUES (?, ?, ?, ?, ?, ?)`
	_, err := t.exec(ctx, q, rt.Hash, rt.Authorization, rt.Issued.UnixMicro(), rt.Expires.UnixMicro(), rt.Spent, mac)
	return t.s.translate("put refresh token", err)
}

// RefreshToken implements smart.LaunchStore.
func (ss *Smart) RefreshToken(ctx context.Context, hash []byte) (smart.RefreshToken, error) {
	if badHash(hash) {
		return smart.RefreshToken{}, smartErr(wrapOp("refresh token", storage.ErrNotFound))
	}
	rows, err := ss.s.r().query(ctx, `SELECT token_hash, authz_id, issued, expires, spent, mac FROM smart_refresh_tokens WHERE token_hash = ?`, hash)
	if err != nil {
		return smart.RefreshToken{}, ss.s.translate("refresh token", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return smart.RefreshToken{}, ss.s.translate("refresh token", err)
		}
		return smart.RefreshToken{}, smartErr(wrapOp("refresh token", storage.ErrNotFound))
	}
	var rt smart.RefreshToken
	var issued, expires int64
	var mac []byte
	if err := rows.Scan(&rt.Hash, &rt.Authorization, &issued, &expires, &rt.Spent, &mac); err != nil {
		return smart.RefreshToken{}, ss.s.translate("refresh token", err)
	}
	if !rt.Spent && !ss.s.hashRowOK(mac, "smart_refresh_tokens", rt.Hash, refreshFields(rt.Authorization, issued, expires)...) {
		return smart.RefreshToken{}, smartErr(wrapOp("refresh token", storage.ErrNotFound))
	}
	rt.Issued, rt.Expires = fromMicros(issued), fromMicros(expires)
	return rt, rows.Err()
}

// RotateRefreshToken implements smart.LaunchStore: a compare-and-set on
// spent, so of two concurrent refreshes with one token only one wins.
func (ss *Smart) RotateRefreshToken(ctx context.Context, old []byte, next smart.RefreshToken) error {
	if badHash(old) || badHash(next.Hash) || !lookupable(next.Authorization) {
		return errors.New("rotate refresh token: malformed token")
	}
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `UPDATE smart_refresh_tokens SET spent = ?, mac = NULL WHERE token_hash = ? AND spent = ?`, true, old, false)
		if err != nil {
			return t.s.translate("rotate refresh token", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("rotate refresh token", err)
		}
		if n != 1 {
			return smart.ErrRefreshSpent
		}
		return putRefresh(ctx, t, next)
	})
	if errors.Is(err, smart.ErrRefreshSpent) {
		return err
	}
	return smartErr(err)
}

// SigningKey implements smart.LaunchStore: the oldest key.
func (ss *Smart) SigningKey(ctx context.Context) (smart.SigningKey, error) {
	rows, err := ss.s.r().query(ctx, `SELECT kid, alg, sealed, created FROM smart_signing_keys ORDER BY created, kid LIMIT 1`)
	if err != nil {
		return smart.SigningKey{}, ss.s.translate("signing key", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return smart.SigningKey{}, ss.s.translate("signing key", err)
		}
		return smart.SigningKey{}, smartErr(wrapOp("signing key", storage.ErrNotFound))
	}
	var k smart.SigningKey
	var created int64
	if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &created); err != nil {
		return smart.SigningKey{}, ss.s.translate("signing key", err)
	}
	k.Created = fromMicros(created)
	return k, rows.Err()
}

// PutSigningKey implements smart.LaunchStore: ErrExists if any key is
// stored already.
func (ss *Smart) PutSigningKey(ctx context.Context, k smart.SigningKey) error {
	for _, f := range []struct{ name, v string }{{"kid", k.KID}, {"alg", k.Alg}, {"sealed", k.Sealed}} {
		if err := validText("put signing key: "+f.name, f.v); err != nil {
			return err
		}
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		rows, err := t.query(ctx, `SELECT 1 FROM smart_signing_keys`)
		if err != nil {
			return t.s.translate("put signing key", err)
		}
		found := rows.Next()
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return t.s.translate("put signing key", err)
		}
		if found {
			return wrapOp("put signing key", storage.ErrConflict)
		}
		_, err = t.exec(ctx, `INSERT INTO smart_signing_keys (kid, alg, sealed, created) VALUES (?, ?, ?, ?)`, k.KID, k.Alg, k.Sealed, k.Created.UnixMicro())
		return t.s.translate("put signing key", err)
	}))
}

// nullAuthorization scans the nullable columns of a LEFT JOIN.
type nullAuthorization struct {
	id, client, user, fhirUser, roles, patient, scopes sql.NullString
	created, expires                                   sql.NullInt64
	revoked                                            sql.NullBool
	mac                                                []byte
}

func (n *nullAuthorization) dest() []any {
	return []any{&n.id, &n.client, &n.user, &n.fhirUser, &n.roles, &n.patient, &n.scopes, &n.created, &n.expires, &n.revoked, &n.mac}
}

// authorization returns the joined row; a token whose authorization row
// is missing, or fails its MAC (ADR 0022), is treated as revoked.
func (n *nullAuthorization) authorization(s *Store) (smart.Authorization, error) {
	if !n.id.Valid {
		return smart.Authorization{Revoked: true}, nil
	}
	if !n.revoked.Bool && !s.rowOK(n.mac, "smart_authorizations", n.id.String, authorizationFields(n.client.String, n.user.String, n.fhirUser.String,
		n.roles.String, n.patient.String, n.scopes.String, n.created.Int64, n.expires.Int64)...) {
		return smart.Authorization{ID: n.id.String, Revoked: true}, nil
	}
	a := smart.Authorization{ID: n.id.String, ClientID: n.client.String, UserID: n.user.String, FHIRUser: n.fhirUser.String,
		Patient: n.patient.String, Created: fromMicros(n.created.Int64), Expires: fromMicros(n.expires.Int64), Revoked: n.revoked.Bool}
	if n.roles.String != "" {
		a.Roles = strings.Split(n.roles.String, ",")
	}
	var err error
	if a.Scopes, err = scope.ParseSet(n.scopes.String); err != nil {
		return smart.Authorization{}, errors.New("stored authorization scopes do not parse")
	}
	return a, nil
}
