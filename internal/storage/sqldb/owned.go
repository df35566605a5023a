package sqldb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// maxOwnedLimit bounds one Owned page.
const maxOwnedLimit = 10000

// Owned implements storage.Reader.
func (s *Store) Owned(ctx context.Context, owners []string, after storage.VersionRef, limit int) ([]storage.Version, error) {
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
	list(b, owners, func(o string) any { return o })
	b.sql(` AND NOT r.deleted AND (r.type > `).arg(after.Type).sql(` OR r.type = `).arg(after.Type).sql(` AND r.id > `).arg(after.ID)
	b.sql(`) ORDER BY r.type, r.id LIMIT `).arg(int64(limit))
	rows, err := s.reader.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, s.translate("owned", err)
	}
	vs, err := scanVersions(rows)
	return vs, s.translate("owned", err)
}

// TokenByHash implements storage.Reader.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (storage.APIToken, error) {
	const q = `SELECT id, name, roles, created, revoked FROM api_tokens WHERE hash = ?`
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
	if err := rows.Scan(&t.ID, &t.Name, &roles, &created, &revoked); err != nil {
		return storage.APIToken{}, s.translate("token", err)
	}
	t.Hash = append([]byte(nil), hash...)
	if roles != "" {
		t.Roles = strings.Split(roles, ",")
	}
	t.Created = time.UnixMicro(created).UTC()
	t.Revoked = revoked != 0
	return t, nil
}

// PutToken implements storage.Tx.
func (t *tx) PutToken(ctx context.Context, tok storage.APIToken) error {
	const q = `INSERT INTO api_tokens (id, name, hash, roles, created, revoked) VALUES (?, ?, ?, ?, ?, ?)`
	revoked := int64(0)
	if tok.Revoked {
		revoked = 1
	}
	_, err := t.exec(ctx, q, tok.ID, tok.Name, tok.Hash, strings.Join(tok.Roles, ","), tok.Created.UnixMicro(), revoked)
	return t.s.translate("put token", err)
}
