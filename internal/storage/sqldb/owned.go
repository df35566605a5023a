package sqldb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// maxOwnedLimit bounds one Owned page.
const maxOwnedLimit = 10000

// Owned implements storage.Reader.
func (s *Store) Owned(ctx context.Context, owners []ident.Owner, after storage.VersionRef, limit int) ([]storage.Version, error) {
	if limit <= 0 || limit > maxOwnedLimit {
		limit = maxOwnedLimit
	}
	if len(owners) == 0 {
		return nil, nil
	}
	if len(owners) > storage.MaxOwners {
		return nil, fmt.Errorf("owned: %d owners, limit %d: %w", len(owners), storage.MaxOwners, storage.ErrTooComplex)
	}
	b := &builder{dollar: s.d.Dollar}
	b.sql(`SELECT v.type, v.id, v.version, v.owner, v.deleted, v.last_updated, v.ciphertext
FROM resources r JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version
WHERE r.owner IN `)
	list(b, owners, func(o ident.Owner) any { return string(o) })
	b.sql(` AND NOT r.deleted AND (r.type > `).arg(after.Type).sql(` OR r.type = `).arg(after.Type).sql(` AND r.id > `).arg(after.ID)
	b.sql(`) ORDER BY r.type, r.id LIMIT `).arg(int64(limit))
	rows, err := s.reader.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, s.translate("owned", err)
	}
	vs, err := scanVersions(rows)
	return vs, s.translate("owned", err)
}

// TokenByHash implements storage.Reader. With row authentication
// (SetRowAuth) a row whose MAC does not verify is not found.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (storage.APIToken, error) {
	const q = `SELECT id, name, hash_kind, roles, created, revoked, mac FROM api_tokens WHERE hash = ?`
	rows, err := s.r().query(ctx, q, hash)
	if err != nil {
		return storage.APIToken{}, s.translate("token", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return storage.APIToken{}, s.translate("token", err)
		}
		return storage.APIToken{}, wrapOp("token", storage.ErrNotFound)
	}
	var t storage.APIToken
	var roles string
	var created, revoked int64
	var mac []byte
	if err := rows.Scan(&t.ID, &t.Name, &t.HashKind, &roles, &created, &revoked, &mac); err != nil {
		return storage.APIToken{}, s.translate("token", err)
	}
	if !s.rowOK(mac, "api_tokens", t.ID, apiTokenFields(t.Name, hash, t.HashKind, roles, created, revoked != 0)...) {
		return storage.APIToken{}, wrapOp("token", storage.ErrNotFound)
	}
	t.Hash = append([]byte(nil), hash...)
	if roles != "" {
		t.Roles = strings.Split(roles, ",")
	}
	t.Created = time.UnixMicro(created).UTC()
	t.Revoked = revoked != 0
	return t, nil
}

// PutToken implements storage.Tx. With row authentication it stores
// the row's MAC, and refuses a token whose hash is not keyed: only the
// upgrade pass MACs plain SHA-256 hashes.
func (t *tx) PutToken(ctx context.Context, tok storage.APIToken) error {
	const q = `INSERT INTO api_tokens (id, name, hash, hash_kind, roles, created, revoked, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	kind := tok.HashKind
	if kind == "" {
		kind = storage.HashSHA256
	}
	if t.s.RowAuthenticated() && kind != storage.HashHMAC {
		return fmt.Errorf("put token: hash kind %q, want %q (ADR 0022)", kind, storage.HashHMAC)
	}
	roles := strings.Join(tok.Roles, ",")
	created := tok.Created.UnixMicro()
	mac := t.s.rowMAC("api_tokens", tok.ID, apiTokenFields(tok.Name, tok.Hash, kind, roles, created, tok.Revoked)...)
	revoked := int64(0)
	if tok.Revoked {
		revoked = 1
	}
	_, err := t.exec(ctx, q, tok.ID, tok.Name, tok.Hash, kind, roles, created, revoked, mac)
	return t.s.translate("put token", err)
}
