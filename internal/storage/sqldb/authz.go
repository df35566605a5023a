package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

var (
	_ authz.GrantStore  = (*Authz)(nil)
	_ authz.ReviewStore = (*Authz)(nil)
)

// Authz implements the authorization stores on the authz_* tables
// (migration 0011): break-the-glass grants, their review queue, alerts
// and policy versions. It is safe for concurrent use.
type Authz struct{ s *Store }

// Authz returns the authorization store over this database.
func (s *Store) Authz() *Authz { return &Authz{s: s} }

// maxAuthzList bounds one listing.
const maxAuthzList = 500

// ActiveGrants implements authz.GrantStore.
func (a *Authz) ActiveGrants(ctx context.Context, userID string, now time.Time) ([]authz.Grant, error) {
	const q = `SELECT id, user_id, patient, reason, created, expires, mac FROM authz_grants WHERE user_id = ? AND expires > ? ORDER BY created`
	rows, err := a.s.r().query(ctx, q, userID, now.UnixMicro())
	if err != nil {
		return nil, a.s.translate("active grants", err)
	}
	defer rows.Close()
	var out []authz.Grant
	for rows.Next() {
		var g authz.Grant
		var created, expires int64
		var mac []byte
		if err := rows.Scan(&g.ID, &g.UserID, &g.Patient, &g.Reason, &created, &expires, &mac); err != nil {
			return nil, a.s.translate("active grants", err)
		}
		// A grant inserted or widened in SQL never verifies (ADR 0022):
		// it grants nothing and raises the integrity alarm.
		if !a.s.rowOK(mac, "authz_grants", g.ID, grantFields(g.UserID, g.Patient, created, expires)...) {
			continue
		}
		g.Created, g.Expires = fromMicros(created), fromMicros(expires)
		out = append(out, g)
	}
	return out, a.s.translate("active grants", rows.Err())
}

var _ authz.Tx = (*tx)(nil)

// InsertGrant implements authz.Tx; the row carries its MAC (ADR 0022).
func (t *tx) InsertGrant(ctx context.Context, g authz.Grant, note []byte) error {
	for _, f := range []struct{ name, v string }{{"id", g.ID}, {"user", g.UserID}, {"patient", g.Patient}, {"reason", g.Reason}} {
		if err := validText("create grant: "+f.name, f.v); err != nil {
			return err
		}
	}
	mac := t.s.rowMAC("authz_grants", g.ID, grantFields(g.UserID, g.Patient, g.Created.UnixMicro(), g.Expires.UnixMicro())...)
	if _, err := t.exec(ctx, `INSERT INTO authz_grants (id, user_id, patient, reason, note, created, expires, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.UserID, g.Patient, g.Reason, note, g.Created.UnixMicro(), g.Expires.UnixMicro(), mac); err != nil {
		return t.s.translate("create grant", err)
	}
	return nil
}

// InsertReview implements authz.Tx.
func (t *tx) InsertReview(ctx context.Context, r authz.Review, g authz.Grant) error {
	if err := validText("create grant: review", r.ID); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO authz_reviews (id, grant_id, user_id, patient, reason, created, expires, closed, closed_by, closed_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 0, '')`,
		r.ID, g.ID, g.UserID, g.Patient, g.Reason, g.Created.UnixMicro(), g.Expires.UnixMicro(), false); err != nil {
		return t.s.translate("create review", err)
	}
	return nil
}

const reviewCols = `id, grant_id, user_id, patient, reason, created, expires, closed, closed_by, closed_at, outcome, close_note IS NOT NULL`

func scanReview(rows *sql.Rows) (authz.Review, error) {
	var r authz.Review
	var created, expires, closedAt int64
	if err := rows.Scan(&r.ID, &r.GrantID, &r.UserID, &r.Patient, &r.Reason, &created, &expires, &r.Closed, &r.ClosedBy, &closedAt, &r.Outcome, &r.Noted); err != nil {
		return authz.Review{}, err
	}
	r.Created, r.Expires = fromMicros(created), fromMicros(expires)
	if r.Closed {
		r.ClosedAt = fromMicros(closedAt)
	}
	return r, nil
}

// Reviews implements authz.ReviewStore.
func (a *Authz) Reviews(ctx context.Context, open bool, limit int) ([]authz.Review, error) {
	if limit < 1 || limit > maxAuthzList {
		limit = maxAuthzList
	}
	q := `SELECT ` + reviewCols + ` FROM authz_reviews ORDER BY created DESC, id LIMIT ?`
	args := []any{limit}
	if open {
		q = `SELECT ` + reviewCols + ` FROM authz_reviews WHERE closed = ? ORDER BY created DESC, id LIMIT ?`
		args = []any{false, limit}
	}
	rows, err := a.s.r().query(ctx, q, args...)
	if err != nil {
		return nil, a.s.translate("reviews", err)
	}
	defer rows.Close()
	var out []authz.Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, a.s.translate("reviews", err)
		}
		out = append(out, r)
	}
	return out, a.s.translate("reviews", rows.Err())
}

// GrantNote implements authz.ReviewStore: the sealed free text of a
// grant (nil when it has none).
func (a *Authz) GrantNote(ctx context.Context, grantID string) ([]byte, error) {
	if !lookupable(grantID) {
		return nil, wrapOp("grant note", storage.ErrNotFound)
	}
	rows, err := a.s.r().query(ctx, `SELECT note FROM authz_grants WHERE id = ?`, grantID)
	if err != nil {
		return nil, a.s.translate("grant note", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, a.s.translate("grant note", err)
		}
		return nil, wrapOp("grant note", storage.ErrNotFound)
	}
	var note []byte
	err = rows.Scan(&note)
	return note, a.s.translate("grant note", err)
}

// Review implements authz.ReviewStore.
func (a *Authz) Review(ctx context.Context, id string) (authz.Review, error) {
	if !lookupable(id) {
		return authz.Review{}, wrapOp("review", storage.ErrNotFound)
	}
	rows, err := a.s.r().query(ctx, `SELECT `+reviewCols+` FROM authz_reviews WHERE id = ?`, id)
	if err != nil {
		return authz.Review{}, a.s.translate("review", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return authz.Review{}, a.s.translate("review", err)
		}
		return authz.Review{}, wrapOp("review", storage.ErrNotFound)
	}
	r, err := scanReview(rows)
	return r, a.s.translate("review", err)
}

// CloseReview implements authz.Tx: the already-closed check reads the
// entry in this transaction, then closes it.
func (t *tx) CloseReview(ctx context.Context, id, by, outcome string, note []byte, at time.Time) (authz.Review, error) {
	if !lookupable(id) {
		return authz.Review{}, wrapOp("close review", storage.ErrNotFound)
	}
	if err := validText("close review: by", by); err != nil {
		return authz.Review{}, err
	}
	rows, err := t.query(ctx, `SELECT `+reviewCols+` FROM authz_reviews WHERE id = ?`, id)
	if err != nil {
		return authz.Review{}, t.s.translate("close review", err)
	}
	var out authz.Review
	found := rows.Next()
	if found {
		out, err = scanReview(rows)
	}
	if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return authz.Review{}, t.s.translate("close review", err)
	}
	if !found {
		return authz.Review{}, wrapOp("close review", storage.ErrNotFound)
	}
	if out.Closed {
		return authz.Review{}, wrapOp("close review", storage.ErrConflict)
	}
	// The row's closed flag is the condition of the update, not only of
	// the read above: two closes racing under PostgreSQL's READ
	// COMMITTED both read it open, and only one may close it (and be
	// audited); the other answers ErrConflict, as a late close does.
	res, err := t.exec(ctx, `UPDATE authz_reviews SET closed = ?, closed_by = ?, closed_at = ?, outcome = ?, close_note = ? WHERE id = ? AND closed = ?`,
		true, by, at.UnixMicro(), outcome, nullBytes(note), id, false)
	if err != nil {
		return authz.Review{}, t.s.translate("close review", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return authz.Review{}, t.s.translate("close review", err)
	} else if n != 1 {
		return authz.Review{}, wrapOp("close review", storage.ErrConflict)
	}
	out.Closed, out.ClosedBy, out.ClosedAt, out.Outcome, out.Noted = true, by, at.UTC(), outcome, len(note) > 0
	return out, nil
}

// CloseAlerts implements authz.Tx: the open alerts of kind for ref are
// closed by by, as covered by review, at at (migration 0031).
func (t *tx) CloseAlerts(ctx context.Context, kind, ref, by, review string, at time.Time) ([]string, error) {
	if err := errors.Join(validText("close alerts: by", by), validText("close alerts: review", review)); err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, `SELECT id FROM authz_alerts WHERE kind = ? AND ref = ? AND closed_at = 0 ORDER BY id`, kind, ref)
	if err != nil {
		return nil, t.s.translate("close alerts", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, t.s.translate("close alerts", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, t.s.translate("close alerts", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := t.exec(ctx, `UPDATE authz_alerts SET closed_at = ?, closed_by = ?, closed_review = ? WHERE kind = ? AND ref = ? AND closed_at = 0`,
		at.UnixMicro(), by, review, kind, ref); err != nil {
		return nil, t.s.translate("close alerts", err)
	}
	return ids, nil
}

// Alerts implements authz.ReviewStore.
func (a *Authz) Alerts(ctx context.Context, limit int) ([]authz.Alert, error) {
	if limit < 1 || limit > maxAuthzList {
		limit = maxAuthzList
	}
	rows, err := a.s.r().query(ctx, `SELECT id, kind, priority, user_id, patient, ref, created, closed_at, closed_by, closed_review FROM authz_alerts ORDER BY created DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, a.s.translate("alerts", err)
	}
	defer rows.Close()
	var out []authz.Alert
	for rows.Next() {
		var al authz.Alert
		var created, closed int64
		if err := rows.Scan(&al.ID, &al.Kind, &al.Priority, &al.UserID, &al.Patient, &al.Ref, &created, &closed, &al.ClosedBy, &al.ClosedReview); err != nil {
			return nil, a.s.translate("alerts", err)
		}
		al.Created = fromMicros(created)
		if closed != 0 {
			al.Closed = fromMicros(closed)
		}
		out = append(out, al)
	}
	return out, a.s.translate("alerts", rows.Err())
}

// PolicyVersion is one policy set that came into force.
type PolicyVersion = authz.PolicyVersion

// LatestPolicyVersion returns the policy set recorded last, or an error
// wrapping storage.ErrNotFound when none was.
func (a *Authz) LatestPolicyVersion(ctx context.Context) (PolicyVersion, error) {
	rows, err := a.s.r().query(ctx, `SELECT seq, hash, source, created FROM authz_policy_versions ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return PolicyVersion{}, a.s.translate("latest policy version", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return PolicyVersion{}, a.s.translate("latest policy version", err)
		}
		return PolicyVersion{}, wrapOp("latest policy version", storage.ErrNotFound)
	}
	var v PolicyVersion
	var created int64
	if err := rows.Scan(&v.Seq, &v.Hash, &v.Source, &created); err != nil {
		return PolicyVersion{}, a.s.translate("latest policy version", err)
	}
	v.Created = fromMicros(created)
	return v, nil
}

// PolicyVersions lists the recorded policy versions, newest first.
func (a *Authz) PolicyVersions(ctx context.Context, limit int) ([]PolicyVersion, error) {
	if limit < 1 || limit > maxAuthzList {
		limit = maxAuthzList
	}
	rows, err := a.s.r().query(ctx, `SELECT seq, hash, source, created FROM authz_policy_versions ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, a.s.translate("policy versions", err)
	}
	defer rows.Close()
	var out []PolicyVersion
	for rows.Next() {
		var v PolicyVersion
		var created int64
		if err := rows.Scan(&v.Seq, &v.Hash, &v.Source, &created); err != nil {
			return nil, a.s.translate("policy versions", err)
		}
		v.Created = fromMicros(created)
		out = append(out, v)
	}
	return out, a.s.translate("policy versions", rows.Err())
}

// LatestPolicyHash implements authz.Tx.
func (t *tx) LatestPolicyHash(ctx context.Context) (string, error) {
	rows, err := t.query(ctx, `SELECT hash FROM authz_policy_versions ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return "", t.s.translate("record policy version", err)
	}
	var last string
	if rows.Next() {
		err = rows.Scan(&last)
	}
	if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return "", t.s.translate("record policy version", err)
	}
	return last, nil
}

// InsertPolicyVersion implements authz.Tx.
func (t *tx) InsertPolicyVersion(ctx context.Context, hash, source string, at time.Time) error {
	if err := validText("record policy version: source", source); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO authz_policy_versions (hash, source, created) VALUES (?, ?, ?)`, hash, source, at.UnixMicro()); err != nil {
		return t.s.translate("record policy version", err)
	}
	return nil
}
