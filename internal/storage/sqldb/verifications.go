package sqldb

import (
	"context"

	"github.com/phivault/phivault/internal/storage"
)

// RecordVerification stores the outcome of a full verification.
func (s *Store) RecordVerification(ctx context.Context, v storage.Verification) error {
	if len(v.Detail) > 1024 {
		v.Detail = v.Detail[:1024]
	}
	return s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `INSERT INTO audit_verifications (finished, size, ok, detail) VALUES (?, ?, ?, ?)`,
			v.Finished.UnixMicro(), v.Size, v.OK, v.Detail)
		return t.s.translate("record verification", err)
	})
}

// LastVerification returns the latest verification, the latest
// successful one if okOnly, or storage.ErrNotFound for none.
func (s *Store) LastVerification(ctx context.Context, okOnly bool) (storage.Verification, error) {
	q := `SELECT finished, size, ok, detail FROM audit_verifications ORDER BY finished DESC LIMIT 1`
	if okOnly {
		q = `SELECT finished, size, ok, detail FROM audit_verifications WHERE ok = ? ORDER BY finished DESC LIMIT 1`
	}
	var args []any
	if okOnly {
		args = append(args, true)
	}
	rows, err := s.r().query(ctx, q, args...)
	if err != nil {
		return storage.Verification{}, s.translate("last verification", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return storage.Verification{}, s.translate("last verification", err)
		}
		return storage.Verification{}, wrapOp("last verification", storage.ErrNotFound)
	}
	var v storage.Verification
	var at int64
	if err := rows.Scan(&at, &v.Size, &v.OK, &v.Detail); err != nil {
		return storage.Verification{}, s.translate("last verification", err)
	}
	v.Finished = fromMicros(at)
	return v, nil
}
