package sqldb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

// RowAuth authenticates the rows that grant access (ADR 0022): API
// tokens, users, sessions, SMART clients and SMART tokens. keys.AuthRowKey
// implements it.
type RowAuth interface {
	// MAC is the MAC of a row: table, primary key, columns.
	MAC(table, id string, fields ...[]byte) []byte
	// Verify checks a stored MAC in constant time; nil never verifies.
	Verify(mac []byte, table, id string, fields ...[]byte) bool
	// LookupHash is the keyed lookup hash of a secret of a kind.
	LookupHash(kind, secret string) []byte
}

type rowAuth struct {
	key   RowAuth
	alarm func(table, id string)
}

// SetRowAuth makes the store MAC every row that grants access when it
// writes one, and verify the MAC whenever it reads one to authenticate
// or authorize: a row whose MAC is missing or wrong is answered as not
// found, and alarm is called with the table and the row's primary key
// (never a secret). alarm may be nil. It is called once, at start-up
// (package app), before the store serves; a second call is an error.
//
// Without it the store neither writes nor checks MACs: only tests that
// exercise storage alone run so. The application refuses to start
// without it.
func (s *Store) SetRowAuth(key RowAuth, alarm func(table, id string)) error {
	if key == nil {
		return errors.New("sqldb: row authentication: nil key")
	}
	if alarm == nil {
		alarm = func(string, string) {}
	}
	if !s.auth.CompareAndSwap(nil, &rowAuth{key: key, alarm: alarm}) {
		return errors.New("sqldb: row authentication already set")
	}
	return nil
}

// RowAuthenticated reports whether SetRowAuth was called.
func (s *Store) RowAuthenticated() bool { return s.auth.Load() != nil }

// rowMAC is the MAC to store with a row, nil without row authentication.
func (s *Store) rowMAC(table, id string, fields ...[]byte) []byte {
	a := s.auth.Load()
	if a == nil {
		return nil
	}
	return a.key.MAC(table, id, fields...)
}

// rowOKAs is rowOK for a row whose primary key must not be logged (a
// token hash): the alarm names it as alarmID.
func (s *Store) rowOKAs(mac []byte, table, id, alarmID string, fields ...[]byte) bool {
	a := s.auth.Load()
	if a == nil {
		return true
	}
	if a.key.Verify(mac, table, id, fields...) {
		return true
	}
	a.alarm(table, alarmID)
	return false
}

// hashRowID is the MAC row id of a row keyed by a token hash, and the
// name its alarm uses: the first 8 bytes only (a token hash is not the
// token, but logs need no more to find the row).
func hashRowID(hash []byte) (id, alarmID string) {
	id = hex.EncodeToString(hash)
	if len(id) > 16 {
		return id, "hash:" + id[:16]
	}
	return id, "hash:" + id
}

// rowOK verifies a row read to authenticate or authorize. It is true
// without row authentication; otherwise false, with an alarm, when mac
// does not verify.
func (s *Store) rowOK(mac []byte, table, id string, fields ...[]byte) bool {
	a := s.auth.Load()
	if a == nil {
		return true
	}
	if a.key.Verify(mac, table, id, fields...) {
		return true
	}
	a.alarm(table, id)
	return false
}

// Field encoders for row MACs: one canonical encoding per column type.

func macStr(s string) []byte { return []byte(s) }

func macInt(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func macBool(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}

// apiTokenFields are the MAC'd columns of an api_tokens row, in order.
func apiTokenFields(name string, hash []byte, hashKind, roles string, created int64, revoked bool) [][]byte {
	return [][]byte{macStr(name), hash, macStr(hashKind), macStr(roles), macInt(created), macBool(revoked)}
}

// AuthRowsBlessed counts, per table, the rows BlessAuthRows MACed.
type AuthRowsBlessed map[string]int

// BlessAuthRows MACs, in stx, every row of the authenticated tables
// that has no MAC yet: rows written before migration 0022. The
// application calls it exactly once per database, in the transaction
// that creates the auth-rows key (ADR 0022): it blesses whatever the
// tables hold then, forged rows included, so the upgrade note tells
// operators to review accounts and tokens. Rows are read and updated in
// primary-key order; it does not need SetRowAuth.
func (s *Store) BlessAuthRows(ctx context.Context, stx storage.Tx, key RowAuth) (AuthRowsBlessed, error) {
	t, ok := stx.(*tx)
	if !ok {
		return nil, errors.New("bless auth rows: not a transaction of this store")
	}
	out := AuthRowsBlessed{}
	// api_tokens
	type tokRow struct {
		id, name, kind, roles string
		hash                  []byte
		created, revoked      int64
	}
	rows, err := t.query(ctx, `SELECT id, name, hash, hash_kind, roles, created, revoked FROM api_tokens WHERE mac IS NULL ORDER BY id`)
	if err != nil {
		return nil, t.s.translate("bless api tokens", err)
	}
	var toks []tokRow
	for rows.Next() {
		var r tokRow
		if err := rows.Scan(&r.id, &r.name, &r.hash, &r.kind, &r.roles, &r.created, &r.revoked); err != nil {
			rows.Close()
			return nil, t.s.translate("bless api tokens", err)
		}
		toks = append(toks, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, t.s.translate("bless api tokens", err)
	}
	for _, r := range toks {
		mac := key.MAC("api_tokens", r.id, apiTokenFields(r.name, r.hash, r.kind, r.roles, r.created, r.revoked != 0)...)
		if _, err := t.exec(ctx, `UPDATE api_tokens SET mac = ? WHERE id = ?`, mac, r.id); err != nil {
			return nil, t.s.translate("bless api tokens", err)
		}
	}
	out["api_tokens"] = len(toks)
	if out["users"], err = blessUsers(ctx, t, key); err != nil {
		return nil, err
	}
	if out["enrolment_secrets"], err = blessEnrolments(ctx, t, key); err != nil {
		return nil, err
	}
	if out["sessions"], err = blessSessions(ctx, t, key); err != nil {
		return nil, err
	}
	if out["smart_clients"], err = blessClients(ctx, t, key); err != nil {
		return nil, err
	}
	if err := blessSMARTGrants(ctx, t, key, out); err != nil {
		return nil, err
	}
	if err := blessSecondFactors(ctx, t, key, out); err != nil {
		return nil, err
	}
	if out["sso_links"], err = blessSSOLinks(ctx, t, key); err != nil {
		return nil, err
	}
	if out["authz_grants"], err = blessGrants(ctx, t, key); err != nil {
		return nil, err
	}
	return out, nil
}

// blessClients MACs the enabled SMART clients, whatever their approval
// state (a pending one still needs its second administrator).
func blessClients(ctx context.Context, t *tx, key RowAuth) (int, error) {
	rows, err := t.query(ctx, `SELECT id FROM smart_clients WHERE mac IS NULL AND NOT disabled ORDER BY id`)
	if err != nil {
		return 0, t.s.translate("bless clients", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, t.s.translate("bless clients", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless clients", err)
	}
	for _, id := range ids {
		if err := t.macClient(ctx, "bless clients", id, key); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// blessSessions MACs the live sessions (revoked ones need none).
func blessSessions(ctx context.Context, t *tx, key RowAuth) (int, error) {
	type sessRow struct {
		id, userID, kind       string
		hash                   []byte
		created, expires, idle int64
		mfa                    bool
	}
	rows, err := t.query(ctx, `SELECT id, user_id, token_hash, hash_kind, created, expires_absolute, idle_seconds, mfa FROM sessions WHERE mac IS NULL AND NOT revoked ORDER BY id`)
	if err != nil {
		return 0, t.s.translate("bless sessions", err)
	}
	var xs []sessRow
	for rows.Next() {
		var r sessRow
		if err := rows.Scan(&r.id, &r.userID, &r.hash, &r.kind, &r.created, &r.expires, &r.idle, &r.mfa); err != nil {
			rows.Close()
			return 0, t.s.translate("bless sessions", err)
		}
		xs = append(xs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless sessions", err)
	}
	for _, r := range xs {
		mac := key.MAC("sessions", r.id, sessionFields(r.userID, r.hash, r.kind, r.created, r.expires, r.idle, r.mfa)...)
		if _, err := t.exec(ctx, `UPDATE sessions SET mac = ? WHERE id = ?`, mac, r.id); err != nil {
			return 0, t.s.translate("bless sessions", err)
		}
	}
	return len(xs), nil
}

func blessEnrolments(ctx context.Context, t *tx, key RowAuth) (int, error) {
	type enrolRow struct {
		id, kind string
		hash     []byte
		expires  int64
	}
	rows, err := t.query(ctx, `SELECT user_id, hash, hash_kind, expires FROM enrolment_secrets WHERE mac IS NULL ORDER BY user_id`)
	if err != nil {
		return 0, t.s.translate("bless enrolment secrets", err)
	}
	var es []enrolRow
	for rows.Next() {
		var r enrolRow
		if err := rows.Scan(&r.id, &r.hash, &r.kind, &r.expires); err != nil {
			rows.Close()
			return 0, t.s.translate("bless enrolment secrets", err)
		}
		es = append(es, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless enrolment secrets", err)
	}
	for _, r := range es {
		mac := key.MAC("enrolment_secrets", r.id, enrolmentFields(r.hash, r.kind, r.expires)...)
		if _, err := t.exec(ctx, `UPDATE enrolment_secrets SET mac = ? WHERE user_id = ?`, mac, r.id); err != nil {
			return 0, t.s.translate("bless enrolment secrets", err)
		}
	}
	return len(es), nil
}

func blessUsers(ctx context.Context, t *tx, key RowAuth) (int, error) {
	type userRow struct {
		id, username, fhirUser, roles, password string
		disabled, mfa                           bool
	}
	rows, err := t.query(ctx, `SELECT id, username, fhir_user, roles, disabled, mfa_enrolled, password_hash FROM users WHERE mac IS NULL ORDER BY id`)
	if err != nil {
		return 0, t.s.translate("bless users", err)
	}
	var us []userRow
	for rows.Next() {
		var r userRow
		if err := rows.Scan(&r.id, &r.username, &r.fhirUser, &r.roles, &r.disabled, &r.mfa, &r.password); err != nil {
			rows.Close()
			return 0, t.s.translate("bless users", err)
		}
		us = append(us, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless users", err)
	}
	for _, r := range us {
		mac := key.MAC("users", r.id, userFields(r.username, r.fhirUser, r.roles, r.disabled, r.mfa, r.password)...)
		if _, err := t.exec(ctx, `UPDATE users SET mac = ? WHERE id = ?`, mac, r.id); err != nil {
			return 0, t.s.translate("bless users", err)
		}
	}
	return len(us), nil
}

// RaiseAuthRowAlert records a high-priority alert (kind
// "auth-row-tampered", ref "<table>/<id>") for the security
// administrators' console, once per row, with audit in the same
// transaction. table and id name the row only; no secret is passed.
func (s *Store) RaiseAuthRowAlert(ctx context.Context, table, id string, now time.Time, audit storage.AuditRecord) error {
	ref := table + "/" + id
	return s.RaiseIntegrityAlert(ctx, "authrow:"+ref, "auth-row-tampered", ref, now, audit)
}

// RaiseIntegrityAlert raises a high-priority alert of kind naming ref in
// the security administrators' console and appends audit, once per id:
// an alert raised before is left as it is and no second event is added.
func (s *Store) RaiseIntegrityAlert(ctx context.Context, id, kind, ref string, now time.Time, audit storage.AuditRecord) error {
	for _, v := range []string{id, kind, ref} {
		if err := validText("integrity alert", v); err != nil {
			return err
		}
	}
	return s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			id, kind, "high", "", "", ref, now.UnixMicro())
		if err != nil {
			return t.s.translate("integrity alert", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return t.s.translate("integrity alert", err) // raised before: no second event
		}
		return t.AppendAudit(ctx, audit)
	})
}

// lookupSession is the lookup-hash kind of session tokens. The session
// package hands the store SHA-256(token); the store keeps the keyed hash
// of that (ADR 0022), so a database writer who picks a token cannot
// compute what to store.
const lookupSession = "session"

// storedSessionHash is the token hash to store for a session and its
// kind: keyed with row authentication, the given SHA-256 without.
func (s *Store) storedSessionHash(sha []byte) ([]byte, string) {
	a := s.auth.Load()
	if a == nil {
		return sha, storage.HashSHA256
	}
	return a.key.LookupHash(lookupSession, string(sha)), storage.HashHMAC
}

// sessionFields are the MAC'd columns of a live sessions row (ADR 0022):
// all but last_seen (moved on every request; the absolute expiry bounds
// it) and address (a label). A revoked row keeps no MAC: revocation sets
// it to NULL, so a row un-revoked in SQL never verifies again.
func sessionFields(userID string, tokenHash []byte, kind string, created, expires, idle int64, mfa bool) [][]byte {
	return [][]byte{macStr(userID), tokenHash, macStr(kind), macInt(created), macInt(expires), macInt(idle), macBool(mfa)}
}

// insertSession writes a new session row: the stored hash of tokenSHA
// (SHA-256 of the token) and, with row authentication, its MAC.
func (t *tx) insertSession(ctx context.Context, op string, x session.Session, tokenSHA []byte) error {
	hash, kind := t.s.storedSessionHash(tokenSHA)
	idle := int64(x.IdleTimeout / time.Second)
	var mac []byte
	if !x.Revoked {
		mac = t.s.rowMAC("sessions", x.ID, sessionFields(x.UserID, hash, kind, x.Created.UnixMicro(), x.ExpiresAbsolute.UnixMicro(), idle, x.MFA)...)
	}
	const q = `INSERT INTO sessions (id, user_id, token_hash, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address, hash_kind, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err := t.exec(ctx, q, x.ID, x.UserID, hash, x.Created.UnixMicro(), x.LastSeen.UnixMicro(), x.ExpiresAbsolute.UnixMicro(),
		idle, x.Revoked, x.MFA, x.Address, kind, mac)
	return t.s.translate(op, err)
}

// SMART grants (ADR 0022): authorizations, authorization codes, access
// and refresh tokens. Their lookup hashes stay SHA-256; the MAC binds
// each live row (not revoked, used or spent: ending one clears its MAC,
// so it can never be revived in SQL) to its token hash.

// authorizationFields are the MAC'd columns of a live smart_authorizations row.
func authorizationFields(clientID, userID, fhirUser, roles, patient, scopes string, created, expires int64) [][]byte {
	return [][]byte{macStr(clientID), macStr(userID), macStr(fhirUser), macStr(roles), macStr(patient), macStr(scopes), macInt(created), macInt(expires)}
}

// codeFields are the MAC'd columns of an unused smart_auth_codes row.
func codeFields(authzID, redirectURI, challenge, nonce string, expires int64) [][]byte {
	return [][]byte{macStr(authzID), macStr(redirectURI), macStr(challenge), macStr(nonce), macInt(expires)}
}

// accessFields are the MAC'd columns of a live smart_access_tokens row.
func accessFields(clientID, scopes string, issued, expires int64, authzID string) [][]byte {
	return [][]byte{macStr(clientID), macStr(scopes), macInt(issued), macInt(expires), macStr(authzID)}
}

// refreshFields are the MAC'd columns of an unspent smart_refresh_tokens row.
func refreshFields(authzID string, issued, expires int64) [][]byte {
	return [][]byte{macStr(authzID), macInt(issued), macInt(expires)}
}

// hashMAC is the MAC of a row keyed by a token hash (nil without row
// authentication).
func (s *Store) hashMAC(table string, hash []byte, fields ...[]byte) []byte {
	id, _ := hashRowID(hash)
	return s.rowMAC(table, id, fields...)
}

// hashRowOK verifies a row keyed by a token hash.
func (s *Store) hashRowOK(mac []byte, table string, hash []byte, fields ...[]byte) bool {
	id, alarmID := hashRowID(hash)
	return s.rowOKAs(mac, table, id, alarmID, fields...)
}

func blessSMARTGrants(ctx context.Context, t *tx, key RowAuth, out AuthRowsBlessed) error {
	type row struct {
		id     string
		fields [][]byte
	}
	bless := func(table, sel, upd string, scan func(*sql.Rows) (row, error)) error {
		rows, err := t.query(ctx, sel)
		if err != nil {
			return t.s.translate("bless "+table, err)
		}
		var rs []row
		for rows.Next() {
			r, err := scan(rows)
			if err != nil {
				rows.Close()
				return t.s.translate("bless "+table, err)
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return t.s.translate("bless "+table, err)
		}
		for _, r := range rs {
			var arg any = r.id
			macID := r.id
			if table != "smart_authorizations" {
				h, err := hex.DecodeString(r.id)
				if err != nil {
					return err
				}
				arg = h
			}
			if _, err := t.exec(ctx, upd, key.MAC(table, macID, r.fields...), arg); err != nil {
				return t.s.translate("bless "+table, err)
			}
		}
		out[table] = len(rs)
		return nil
	}
	err := bless("smart_authorizations", `SELECT id, client_id, user_id, fhir_user, roles, patient, scopes, created, expires FROM smart_authorizations WHERE mac IS NULL AND NOT revoked ORDER BY id`,
		`UPDATE smart_authorizations SET mac = ? WHERE id = ?`, func(rows *sql.Rows) (row, error) {
			var id, c, u, f, ro, p, sc string
			var cr, ex int64
			err := rows.Scan(&id, &c, &u, &f, &ro, &p, &sc, &cr, &ex)
			return row{id, authorizationFields(c, u, f, ro, p, sc, cr, ex)}, err
		})
	if err != nil {
		return err
	}
	err = bless("smart_auth_codes", `SELECT code_hash, authz_id, redirect_uri, code_challenge, nonce, expires FROM smart_auth_codes WHERE mac IS NULL AND NOT used ORDER BY code_hash`,
		`UPDATE smart_auth_codes SET mac = ? WHERE code_hash = ?`, func(rows *sql.Rows) (row, error) {
			var h []byte
			var a, r, c, n string
			var ex int64
			err := rows.Scan(&h, &a, &r, &c, &n, &ex)
			id, _ := hashRowID(h)
			return row{id, codeFields(a, r, c, n, ex)}, err
		})
	if err != nil {
		return err
	}
	err = bless("smart_access_tokens", `SELECT token_hash, client_id, scopes, issued, expires, authz_id FROM smart_access_tokens WHERE mac IS NULL AND NOT revoked ORDER BY token_hash`,
		`UPDATE smart_access_tokens SET mac = ? WHERE token_hash = ?`, func(rows *sql.Rows) (row, error) {
			var h []byte
			var c, sc, a string
			var is, ex int64
			err := rows.Scan(&h, &c, &sc, &is, &ex, &a)
			id, _ := hashRowID(h)
			return row{id, accessFields(c, sc, is, ex, a)}, err
		})
	if err != nil {
		return err
	}
	return bless("smart_refresh_tokens", `SELECT token_hash, authz_id, issued, expires FROM smart_refresh_tokens WHERE mac IS NULL AND NOT spent ORDER BY token_hash`,
		`UPDATE smart_refresh_tokens SET mac = ? WHERE token_hash = ?`, func(rows *sql.Rows) (row, error) {
			var h []byte
			var a string
			var is, ex int64
			err := rows.Scan(&h, &a, &is, &ex)
			id, _ := hashRowID(h)
			return row{id, refreshFields(a, is, ex)}, err
		})
}

// blessSecondFactors MACs the passkeys and recovery codes.
func blessSecondFactors(ctx context.Context, t *tx, key RowAuth, out AuthRowsBlessed) error {
	type pk struct {
		id, user           string
		cred, pub, aaguid  []byte
		eligible, verified bool
		created            int64
	}
	rows, err := t.query(ctx, `SELECT id, user_id, credential_id, public_key, aaguid, backup_eligible, user_verified, created FROM webauthn_credentials WHERE mac IS NULL ORDER BY id`)
	if err != nil {
		return t.s.translate("bless passkeys", err)
	}
	var pks []pk
	for rows.Next() {
		var r pk
		if err := rows.Scan(&r.id, &r.user, &r.cred, &r.pub, &r.aaguid, &r.eligible, &r.verified, &r.created); err != nil {
			rows.Close()
			return t.s.translate("bless passkeys", err)
		}
		pks = append(pks, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t.s.translate("bless passkeys", err)
	}
	for _, r := range pks {
		mac := key.MAC("webauthn_credentials", r.id, passkeyFields(r.user, r.cred, r.pub, r.aaguid, r.eligible, r.verified, r.created)...)
		if _, err := t.exec(ctx, `UPDATE webauthn_credentials SET mac = ? WHERE id = ?`, mac, r.id); err != nil {
			return t.s.translate("bless passkeys", err)
		}
	}
	out["webauthn_credentials"] = len(pks)
	type rc struct {
		user string
		hash []byte
	}
	rows, err = t.query(ctx, `SELECT user_id, hash FROM recovery_codes WHERE mac IS NULL ORDER BY user_id, hash`)
	if err != nil {
		return t.s.translate("bless recovery codes", err)
	}
	var rcs []rc
	for rows.Next() {
		var r rc
		if err := rows.Scan(&r.user, &r.hash); err != nil {
			rows.Close()
			return t.s.translate("bless recovery codes", err)
		}
		rcs = append(rcs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t.s.translate("bless recovery codes", err)
	}
	for _, r := range rcs {
		if _, err := t.exec(ctx, `UPDATE recovery_codes SET mac = ? WHERE user_id = ? AND hash = ?`, key.MAC("recovery_codes", r.user, r.hash), r.user, r.hash); err != nil {
			return t.s.translate("bless recovery codes", err)
		}
	}
	out["recovery_codes"] = len(rcs)
	return nil
}

func blessSSOLinks(ctx context.Context, t *tx, key RowAuth) (int, error) {
	type link struct {
		issuer, subject, user string
		created               int64
	}
	rows, err := t.query(ctx, `SELECT issuer, subject, user_id, created FROM sso_links WHERE mac IS NULL ORDER BY issuer, subject`)
	if err != nil {
		return 0, t.s.translate("bless sso links", err)
	}
	var ls []link
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.issuer, &l.subject, &l.user, &l.created); err != nil {
			rows.Close()
			return 0, t.s.translate("bless sso links", err)
		}
		ls = append(ls, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless sso links", err)
	}
	for _, l := range ls {
		mac := key.MAC("sso_links", l.issuer, ssoLinkFields(l.subject, l.user, l.created)...)
		if _, err := t.exec(ctx, `UPDATE sso_links SET mac = ? WHERE issuer = ? AND subject = ?`, mac, l.issuer, l.subject); err != nil {
			return 0, t.s.translate("bless sso links", err)
		}
	}
	return len(ls), nil
}

// grantFields are the MAC'd columns of an authz_grants row (a
// break-the-glass grant): who, which patient, and for how long.
func grantFields(userID, patient string, created, expires int64) [][]byte {
	return [][]byte{macStr(userID), macStr(patient), macInt(created), macInt(expires)}
}

func blessGrants(ctx context.Context, t *tx, key RowAuth) (int, error) {
	type grant struct {
		id, user, patient string
		created, expires  int64
	}
	rows, err := t.query(ctx, `SELECT id, user_id, patient, created, expires FROM authz_grants WHERE mac IS NULL ORDER BY id`)
	if err != nil {
		return 0, t.s.translate("bless grants", err)
	}
	var gs []grant
	for rows.Next() {
		var g grant
		if err := rows.Scan(&g.id, &g.user, &g.patient, &g.created, &g.expires); err != nil {
			rows.Close()
			return 0, t.s.translate("bless grants", err)
		}
		gs = append(gs, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.translate("bless grants", err)
	}
	for _, g := range gs {
		mac := key.MAC("authz_grants", g.id, grantFields(g.user, g.patient, g.created, g.expires)...)
		if _, err := t.exec(ctx, `UPDATE authz_grants SET mac = ? WHERE id = ?`, mac, g.id); err != nil {
			return 0, t.s.translate("bless grants", err)
		}
	}
	return len(gs), nil
}
