package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/storage"
)

var _ login.PasskeyStore = (*Logins)(nil)

const passkeyCols = `id, user_id, credential_id, public_key, sign_count, aaguid, transports, backup_eligible, backup_state, user_verified, name, created, last_used`

// passkeyFields are the MAC'd columns of a webauthn_credentials row
// (ADR 0022): whose it is and the key that proves it. The sign count,
// backup state, name and last use change as it is used and are not
// covered.
func passkeyFields(userID string, credentialID, publicKey, aaguid []byte, backupEligible, userVerified bool, created int64) [][]byte {
	return [][]byte{macStr(userID), credentialID, publicKey, aaguid, macBool(backupEligible), macBool(userVerified), macInt(created)}
}

// scanPasskeys reads passkeyCols and mac; a passkey whose MAC does not
// verify (row authentication on) is left out, with an integrity alarm.
func scanPasskeys(s *Store, rows *sql.Rows) ([]passkey.Credential, error) {
	defer rows.Close()
	var out []passkey.Credential
	for rows.Next() {
		var c passkey.Credential
		var count, created, used int64
		var tr string
		var mac []byte
		if err := rows.Scan(&c.ID, &c.UserID, &c.CredentialID, &c.PublicKey, &count, &c.AAGUID, &tr,
			&c.BackupEligible, &c.BackupState, &c.UserVerified, &c.Name, &created, &used, &mac); err != nil {
			return nil, err
		}
		if !s.rowOK(mac, "webauthn_credentials", c.ID, passkeyFields(c.UserID, c.CredentialID, c.PublicKey, c.AAGUID, c.BackupEligible, c.UserVerified, created)...) {
			continue
		}
		if count < 0 || count > 1<<32-1 {
			return nil, fmt.Errorf("passkey %s: sign count out of range", c.ID)
		}
		c.SignCount = uint32(count)
		if tr != "" {
			c.Transports = strings.Split(tr, ",")
		}
		c.Created, c.LastUsed = fromMicros(created), fromMicros(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Passkeys implements login.PasskeyStore.
func (l *Logins) Passkeys(ctx context.Context, userID string) ([]passkey.Credential, error) {
	if !lookupable(userID) {
		return nil, nil
	}
	rows, err := l.s.r().query(ctx, `SELECT `+passkeyCols+`, mac FROM webauthn_credentials WHERE user_id = ? ORDER BY created, id`, userID)
	if err != nil {
		return nil, l.s.translate("passkeys", err)
	}
	out, err := scanPasskeys(l.s, rows)
	return out, l.s.translate("passkeys", err)
}

func validPasskey(c passkey.Credential) error {
	switch {
	case !lookupable(c.ID) || !lookupable(c.UserID):
		return errors.New("store passkey: empty or invalid id")
	case len(c.CredentialID) == 0 || len(c.CredentialID) > passkey.MaxCredentialIDBytes:
		return errors.New("store passkey: credential id length out of range")
	case len(c.PublicKey) == 0:
		return errors.New("store passkey: empty public key")
	}
	for _, t := range c.Transports {
		if t == "" || strings.Contains(t, ",") {
			return errors.New("store passkey: malformed transport")
		}
	}
	return validText("store passkey: name", c.Name)
}

// insertPasskey stores c unless the user has passkey.MaxCredentials
// already (storage.ErrConflict); a taken credential id is ErrConflict.
func insertPasskey(ctx context.Context, t *tx, c passkey.Credential) error {
	if err := validPasskey(c); err != nil {
		return err
	}
	n, err := countPasskeys(ctx, t, c.UserID)
	if err != nil {
		return err
	}
	if n >= passkey.MaxCredentials {
		return wrapOp("store passkey: too many", storage.ErrConflict)
	}
	aaguid := c.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	mac := t.s.rowMAC("webauthn_credentials", c.ID, passkeyFields(c.UserID, c.CredentialID, c.PublicKey, aaguid, c.BackupEligible, c.UserVerified, c.Created.UnixMicro())...)
	const q = `INSERT INTO webauthn_credentials (` + passkeyCols + `, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err = t.exec(ctx, q, c.ID, c.UserID, c.CredentialID, c.PublicKey, int64(c.SignCount), aaguid, strings.Join(c.Transports, ","),
		c.BackupEligible, c.BackupState, c.UserVerified, c.Name, c.Created.UnixMicro(), c.LastUsed.UnixMicro(), mac)
	return t.s.translate("store passkey", err)
}

func countPasskeys(ctx context.Context, t *tx, userID string) (int, error) {
	var n int
	rows, err := t.query(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?`, userID)
	if err != nil {
		return 0, t.s.translate("count passkeys", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, t.s.translate("count passkeys", err)
		}
	}
	return n, t.s.translate("count passkeys", rows.Err())
}

// useCeremony records a finished ceremony, pruning expired ones;
// storage.ErrConflict if it was recorded before.
func useCeremony(ctx context.Context, t *tx, u login.CeremonyUse) error {
	if len(u.Key) == 0 || len(u.Key) > maxLoginKey {
		return errors.New("use ceremony: key must be 1 to 64 bytes")
	}
	now := t.s.now().UnixMicro()
	if _, err := t.exec(ctx, `DELETE FROM webauthn_ceremonies WHERE expires < ?`, now); err != nil {
		return t.s.translate("use ceremony: prune", err)
	}
	res, err := t.exec(ctx, `INSERT INTO webauthn_ceremonies (use_key, expires) VALUES (?, ?) ON CONFLICT (use_key) DO NOTHING`,
		u.Key, u.Expires.UnixMicro())
	return affected(t, "use ceremony", res, err)
}

// RenamePasskeyRow implements login.Tx.
func (t *tx) RenamePasskeyRow(ctx context.Context, op, userID, id, name string) error {
	if !lookupable(userID) || !lookupable(id) {
		return wrapOp(op, storage.ErrNotFound)
	}
	if err := validText(op+": name", name); err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE webauthn_credentials SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return wrapOp(op, storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// DeletePasskeyRow implements login.Tx.
func (t *tx) DeletePasskeyRow(ctx context.Context, op, userID, id string) error {
	if !lookupable(userID) || !lookupable(id) {
		return wrapOp(op, storage.ErrNotFound)
	}
	res, err := t.exec(ctx, `DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, userID)
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return wrapOp(op, storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// CountPasskeys implements login.Tx.
func (t *tx) CountPasskeys(ctx context.Context, userID string) (int, error) {
	return countPasskeys(ctx, t, userID)
}

// HasTOTP implements login.Tx.
func (t *tx) HasTOTP(ctx context.Context, userID string) (bool, error) {
	return hasTOTP(ctx, t, userID)
}

func hasTOTP(ctx context.Context, t *tx, userID string) (bool, error) {
	rows, err := t.query(ctx, `SELECT 1 FROM totp_credentials WHERE user_id = ?`, userID)
	if err != nil {
		return false, t.s.translate("totp credential", err)
	}
	defer rows.Close()
	ok := rows.Next()
	return ok, t.s.translate("totp credential", rows.Err())
}

// UseCeremony implements login.Tx.
func (t *tx) UseCeremony(ctx context.Context, u login.CeremonyUse) error {
	return useCeremony(ctx, t, u)
}

// InsertPasskey implements login.Tx.
func (t *tx) InsertPasskey(ctx context.Context, c passkey.Credential) error {
	return insertPasskey(ctx, t, c)
}

// RecordPasskeyUse implements login.Tx.
func (t *tx) RecordPasskeyUse(ctx context.Context, op, userID string, u passkey.Use) error {
	x := u.Credential
	res, err := t.exec(ctx, `UPDATE webauthn_credentials SET sign_count = ?, backup_state = ?, last_used = ? WHERE id = ? AND user_id = ? AND sign_count = ?`,
		int64(x.SignCount), x.BackupState, x.LastUsed.UnixMicro(), x.ID, userID, int64(u.PrevSignCount))
	return affected(t, op, res, err)
}
