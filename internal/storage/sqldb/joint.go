package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Joint owners: a resource that names several patients is sealed with a
// key of its own ("Joint/<h>"), and joint_owners lists the patients it
// stands for, so authorization can decide for each of them and erasing
// any of them destroys the joint key (Shred).

// maxJointMembers bounds the patients of one joint owner (a bound on
// one insert's parameters; the record refuses resources naming more).
const maxJointMembers = 1000

// PutJointOwner implements storage.Tx.
func (t *tx) PutJointOwner(ctx context.Context, owner ident.Owner, patients []ident.Owner) error {
	if !strings.HasPrefix(string(owner), ident.JointPrefix) || len(patients) < 2 || len(patients) > maxJointMembers {
		return fmt.Errorf("put joint owner: %d patients for %q: need 2 to %d and a joint owner", len(patients), owner, maxJointMembers)
	}
	if err := validText("joint owner", string(owner)); err != nil {
		return err
	}
	for rest := patients; len(rest) > 0; {
		n := min(len(rest), insertChunk)
		q := multiRow(`INSERT INTO joint_owners (owner, patient) VALUES `, 2, n) + ` ON CONFLICT (owner, patient) DO NOTHING`
		args := make([]any, 0, 2*n)
		for _, p := range rest[:n] {
			if err := validText("joint owner patient", string(p)); err != nil {
				return err
			}
			args = append(args, owner, p)
		}
		if _, err := t.exec(ctx, q, args...); err != nil {
			return t.s.translate("put joint owner", err)
		}
		rest = rest[n:]
	}
	return nil
}

// JointMembers implements storage.Tx.
func (t *tx) JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error) {
	return jointMembers(ctx, t, owner)
}

// JointMembers implements storage.Reader.
func (s *Store) JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error) {
	return jointMembers(ctx, s.r(), owner)
}

func jointMembers(ctx context.Context, r runner, owner ident.Owner) ([]ident.Owner, error) {
	const q = `SELECT patient FROM joint_owners WHERE owner = ? ORDER BY patient`
	rows, err := r.query(ctx, q, owner)
	if err != nil {
		return nil, r.store().translate("joint members", err)
	}
	var out []ident.Owner
	for rows.Next() {
		var p ident.Owner
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, r.store().translate("joint members", err)
		}
		out = append(out, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, r.store().translate("joint members", err)
	}
	if len(out) == 0 {
		return nil, wrapOp("joint members", storage.ErrNotFound)
	}
	return out, nil
}

// JointOwners implements storage.Reader.
func (s *Store) JointOwners(ctx context.Context, patients []ident.Owner, limit int) (map[ident.Owner][]ident.Owner, error) {
	out := map[ident.Owner][]ident.Owner{}
	if len(patients) == 0 {
		return out, nil
	}
	if len(patients) > storage.MaxOwners {
		return nil, fmt.Errorf("joint owners: %d patients, limit %d: %w", len(patients), storage.MaxOwners, storage.ErrTooComplex)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("joint owners: limit %d must be positive", limit)
	}
	b := &builder{dollar: s.d.Dollar}
	b.sql(`SELECT j.owner, j.patient FROM joint_owners j WHERE j.owner IN (SELECT DISTINCT m.owner FROM joint_owners m WHERE m.patient IN `)
	list(b, patients, func(p ident.Owner) any { return string(p) })
	b.sql(` ORDER BY m.owner LIMIT `).arg(int64(limit)).sql(`) ORDER BY j.owner, j.patient`)
	rows, err := s.reader.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, s.translate("joint owners", err)
	}
	for rows.Next() {
		var o, p ident.Owner
		if err := rows.Scan(&o, &p); err != nil {
			rows.Close()
			return nil, s.translate("joint owners", err)
		}
		out[o] = append(out[o], p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, s.translate("joint owners", err)
	}
	return out, nil
}

// JointOwnersOf implements storage.Tx.
func (t *tx) JointOwnersOf(ctx context.Context, patient ident.Owner) ([]ident.Owner, error) {
	return t.jointOwnersOf(ctx, patient)
}

// jointOwnersOf returns the joint owners naming patient, inside t.
func (t *tx) jointOwnersOf(ctx context.Context, patient ident.Owner) ([]ident.Owner, error) {
	const q = `SELECT owner FROM joint_owners WHERE patient = ? ORDER BY owner`
	rows, err := t.query(ctx, q, patient)
	if err != nil {
		return nil, t.s.translate("joint owners", err)
	}
	var out []ident.Owner
	for rows.Next() {
		var o ident.Owner
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, t.s.translate("joint owners", err)
		}
		out = append(out, o)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, t.s.translate("joint owners", err)
	}
	return out, nil
}

// Reown implements storage.Tx.
func (t *tx) Reown(ctx context.Context, ref storage.VersionRef, owner ident.Owner, ciphertext []byte) error {
	if err := validText("owner", string(owner)); err != nil {
		return err
	}
	if err := t.checkLive(ctx, "reown", owner); err != nil {
		return err
	}
	const qv = `UPDATE resource_versions SET owner = ?, ciphertext = ? WHERE type = ? AND id = ? AND version = ?`
	res, err := t.exec(ctx, qv, owner, nullBytes(ciphertext), ref.Type, ref.ID, ref.Version)
	if err != nil {
		return t.s.translate("reown", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate("reown", err)
	}
	if n == 0 {
		return wrapOp("reown", storage.ErrNotFound)
	}
	const qr = `UPDATE resources SET owner = ? WHERE type = ? AND id = ? AND version = ?`
	if _, err := t.exec(ctx, qr, owner, ref.Type, ref.ID, ref.Version); err != nil {
		return t.s.translate("reown", err)
	}
	return nil
}

// ShredOwner implements storage.Tx.
func (t *tx) ShredOwner(ctx context.Context, owner ident.Owner) (int64, error) {
	return t.shredOne(ctx, owner)
}

// ScanJointOwners implements storage.Reader. One query reads every
// joint_owners row and every joint key record, ordered by owner, so the
// rows of one owner are adjacent.
func (s *Store) ScanJointOwners(ctx context.Context, fn func(storage.JointOwner) error) error {
	const q = `SELECT owner, patient, 0 FROM joint_owners
UNION ALL SELECT owner, NULL, CASE WHEN shredded THEN 2 ELSE 1 END FROM keys WHERE owner LIKE 'Joint/%'
ORDER BY 1`
	rows, err := s.reader.QueryContext(ctx, q)
	if err != nil {
		return s.translate("scan joint owners", err)
	}
	defer rows.Close()
	var cur storage.JointOwner
	flush := func() error {
		if cur.Owner == "" {
			return nil
		}
		slices.Sort(cur.Members)
		err := fn(cur)
		cur = storage.JointOwner{}
		return err
	}
	for rows.Next() {
		var owner ident.Owner
		var patient sql.NullString
		var kind int
		if err := rows.Scan(&owner, &patient, &kind); err != nil {
			return s.translate("scan joint owners", err)
		}
		if owner != cur.Owner {
			if err := flush(); err != nil {
				return err
			}
			cur.Owner = owner
		}
		switch {
		case kind == 0 && patient.Valid:
			cur.Members = append(cur.Members, ident.Owner(patient.String))
		case kind > 0:
			cur.HasKey, cur.Shredded = true, kind == 2
		}
	}
	if err := rows.Err(); err != nil {
		return s.translate("scan joint owners", err)
	}
	return flush()
}

// SetLedgerSecret implements storage.Tx.
func (t *tx) SetLedgerSecret(ctx context.Context, owner ident.Owner, sealed []byte) (bool, error) {
	if len(sealed) == 0 {
		return false, errors.New("set ledger secret: empty secret")
	}
	const q = `UPDATE keys SET ledger = ? WHERE owner = ? AND ledger IS NULL AND NOT shredded`
	res, err := t.exec(ctx, q, sealed, owner)
	if err != nil {
		return false, t.s.translate("set ledger secret", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.s.translate("set ledger secret", err)
	}
	return n == 1, nil
}
