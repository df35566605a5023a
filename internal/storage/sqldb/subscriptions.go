package sqldb

import (
	"context"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/subscription"
)

// Subscriptions (tables subscriptions and subscription_notifications,
// migration 0030_subscriptions): the delivery state package
// subscription keeps beside the sealed Subscription resources.

var _ subscription.Store = (*Subscriptions)(nil)

// Subscriptions implements subscription.Store.
type Subscriptions struct{ s *Store }

// Subscriptions returns the subscription delivery store of this database.
func (s *Store) Subscriptions() *Subscriptions { return &Subscriptions{s: s} }

const subCols = `id, version, owner_kind, owner_id, crit_type, channel, state, failures, updated`

// PutSubscription implements subscription.Store.
func (x *Subscriptions) PutSubscription(ctx context.Context, r subscription.Row) error {
	if err := validText("subscription id", r.ID); err != nil {
		return err
	}
	for _, f := range []string{r.OwnerKind, r.OwnerID, r.CritType, r.Channel, r.State} {
		if err := validOptText("subscription", f); err != nil {
			return err
		}
	}
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `INSERT INTO subscriptions (`+subCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, owner_kind = excluded.owner_kind,
				owner_id = excluded.owner_id, crit_type = excluded.crit_type, channel = excluded.channel,
				state = excluded.state, failures = excluded.failures, updated = excluded.updated
			WHERE subscriptions.version <= excluded.version`,
			r.ID, r.Version, r.OwnerKind, r.OwnerID, r.CritType, r.Channel, r.State, int64(r.Failures), r.Updated.UnixMicro())
		return t.s.translate("put subscription", err)
	})
}

func scanSub(rows interface{ Scan(...any) error }) (subscription.Row, error) {
	var r subscription.Row
	var failures, updated int64
	err := rows.Scan(&r.ID, &r.Version, &r.OwnerKind, &r.OwnerID, &r.CritType, &r.Channel, &r.State, &failures, &updated)
	r.Failures, r.Updated = int(failures), time.UnixMicro(updated).UTC()
	return r, err
}

// Subscription implements subscription.Store.
func (x *Subscriptions) Subscription(ctx context.Context, id string) (subscription.Row, error) {
	rows, err := x.s.r().query(ctx, `SELECT `+subCols+` FROM subscriptions WHERE id = ?`, id)
	if err != nil {
		return subscription.Row{}, x.s.translate("subscription", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return subscription.Row{}, x.s.translate("subscription", err)
		}
		return subscription.Row{}, wrapOp("subscription", storage.ErrNotFound)
	}
	r, err := scanSub(rows)
	return r, x.s.translate("subscription", err)
}

// maxSubscribed bounds the subscriptions one change is matched against
// (STYLE rule 24): the subscriptions of one resource type in one state.
const maxSubscribed = 10000

// SubscribedTo implements subscription.Store.
func (x *Subscriptions) SubscribedTo(ctx context.Context, typ, state string) ([]subscription.Row, error) {
	rows, err := x.s.r().query(ctx, `SELECT `+subCols+` FROM subscriptions WHERE crit_type = ? AND state = ? ORDER BY id LIMIT ?`, typ, state, maxSubscribed)
	if err != nil {
		return nil, x.s.translate("subscribed to", err)
	}
	defer rows.Close()
	var out []subscription.Row
	for rows.Next() {
		r, err := scanSub(rows)
		if err != nil {
			return nil, x.s.translate("subscribed to", err)
		}
		out = append(out, r)
	}
	return out, x.s.translate("subscribed to", rows.Err())
}

// SetState implements subscription.Store.
func (x *Subscriptions) SetState(ctx context.Context, id string, version int64, state string, failures int) error {
	now := x.s.now().UnixMicro()
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `UPDATE subscriptions SET state = ?, failures = ?, updated = ? WHERE id = ? AND version = ?`,
			state, int64(failures), now, id, version)
		return t.s.translate("set subscription state", err)
	})
}

// Enqueue implements subscription.Store.
func (x *Subscriptions) Enqueue(ctx context.Context, ns []subscription.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	for _, n := range ns {
		for _, f := range []string{n.Sub, n.ResType, n.ResID, n.Kind} {
			if err := validText("subscription notification", f); err != nil {
				return err
			}
		}
		if err := validOptText("subscription notification", strings.Join(n.Patients, ",")); err != nil {
			return err
		}
	}
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		for _, n := range ns {
			_, err := t.exec(ctx, `INSERT INTO subscription_notifications
				(sub_id, leaf, res_type, res_id, res_version, kind, patients, attempts, next_at, lease_until, holder, created)
				VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, '', ?) ON CONFLICT DO NOTHING`,
				n.Sub, n.Leaf, n.ResType, n.ResID, n.ResVersion, n.Kind, strings.Join(n.Patients, ","), n.NextAt.UnixMicro(), n.Created.UnixMicro())
			if err != nil {
				return t.s.translate("enqueue notification", err)
			}
		}
		return nil
	})
}

// Claim implements subscription.Store. Candidates are read first, then
// each is leased by a conditional update: of two processes claiming the
// same row, one updates it and the other finds its lease taken.
func (x *Subscriptions) Claim(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int, local func(string) bool) ([]subscription.Notification, error) {
	if err := validText("subscription holder", holder); err != nil {
		return nil, err
	}
	at := now.UnixMicro()
	rows, err := x.s.r().query(ctx, `SELECT n.sub_id, n.leaf, n.res_type, n.res_id, n.res_version, n.kind, n.patients,
			n.attempts, n.next_at, n.created, s.channel
		FROM subscription_notifications n JOIN subscriptions s ON s.id = n.sub_id
		WHERE n.next_at <= ? AND n.lease_until <= ? ORDER BY n.next_at, n.sub_id, n.leaf LIMIT ?`, at, at, int64(4*limit))
	if err != nil {
		return nil, x.s.translate("claim notifications", err)
	}
	var cands []subscription.Notification
	for rows.Next() {
		var n subscription.Notification
		var patients string
		var attempts, next, created int64
		if err := rows.Scan(&n.Sub, &n.Leaf, &n.ResType, &n.ResID, &n.ResVersion, &n.Kind, &patients, &attempts, &next, &created, &n.Channel); err != nil {
			rows.Close()
			return nil, x.s.translate("claim notifications", err)
		}
		if patients != "" {
			n.Patients = strings.Split(patients, ",")
		}
		n.Attempts, n.NextAt, n.Created = int(attempts), time.UnixMicro(next).UTC(), time.UnixMicro(created).UTC()
		if n.Channel == subscription.ChannelWebsocket && (local == nil || !local(n.Sub)) {
			continue
		}
		cands = append(cands, n)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, x.s.translate("claim notifications", err)
	}
	rows.Close()
	var out []subscription.Notification
	until := now.Add(lease).UnixMicro()
	for _, n := range cands {
		if len(out) == limit {
			break
		}
		var got int64
		err := x.s.Update(ctx, func(stx storage.Tx) error {
			t := stx.(*tx)
			res, err := t.exec(ctx, `UPDATE subscription_notifications SET holder = ?, lease_until = ?
				WHERE sub_id = ? AND leaf = ? AND res_type = ? AND res_id = ? AND lease_until <= ? AND next_at <= ?`,
				holder, until, n.Sub, n.Leaf, n.ResType, n.ResID, at, at)
			if err != nil {
				return t.s.translate("claim notification", err)
			}
			got, err = res.RowsAffected()
			return t.s.translate("claim notification", err)
		})
		if err != nil {
			return out, err
		}
		if got == 1 {
			out = append(out, n)
		}
	}
	return out, nil
}

// Done implements subscription.Store.
func (x *Subscriptions) Done(ctx context.Context, holder string, n subscription.Notification) error {
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `DELETE FROM subscription_notifications WHERE sub_id = ? AND leaf = ? AND res_type = ? AND res_id = ? AND holder = ?`,
			n.Sub, n.Leaf, n.ResType, n.ResID, holder)
		return t.s.translate("notification done", err)
	})
}

// Retry implements subscription.Store.
func (x *Subscriptions) Retry(ctx context.Context, holder string, n subscription.Notification, next time.Time) error {
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `UPDATE subscription_notifications SET attempts = attempts + 1, next_at = ?, lease_until = 0, holder = ''
			WHERE sub_id = ? AND leaf = ? AND res_type = ? AND res_id = ? AND holder = ?`,
			next.UnixMicro(), n.Sub, n.Leaf, n.ResType, n.ResID, holder)
		return t.s.translate("notification retry", err)
	})
}

// DropPending implements subscription.Store.
func (x *Subscriptions) DropPending(ctx context.Context, sub string) error {
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `DELETE FROM subscription_notifications WHERE sub_id = ?`, sub)
		return t.s.translate("drop notifications", err)
	})
}

// DropStale implements subscription.Store.
func (x *Subscriptions) DropStale(ctx context.Context, channel string, before time.Time) (int64, error) {
	var n int64
	err := x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `DELETE FROM subscription_notifications WHERE created < ? AND lease_until <= ?
			AND sub_id IN (SELECT id FROM subscriptions WHERE channel = ?)`, before.UnixMicro(), before.UnixMicro(), channel)
		if err != nil {
			return t.s.translate("drop stale notifications", err)
		}
		n, err = res.RowsAffected()
		return t.s.translate("drop stale notifications", err)
	})
	return n, err
}

// TokenByID returns the API token id (revoked ones included), or an
// error wrapping storage.ErrNotFound; a row whose MAC does not verify
// (row authentication, ADR 0022) is not found. The subscription service
// re-resolves a token-owned subscription's owner with it.
func (s *Store) TokenByID(ctx context.Context, id string) (storage.APIToken, error) {
	rows, err := s.r().query(ctx, `SELECT hash FROM api_tokens WHERE id = ?`, id)
	if err != nil {
		return storage.APIToken{}, s.translate("token by id", err)
	}
	var hash []byte
	found := rows.Next()
	if found {
		err = rows.Scan(&hash)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return storage.APIToken{}, s.translate("token by id", err)
	}
	if !found {
		return storage.APIToken{}, wrapOp("token by id", storage.ErrNotFound)
	}
	// Through TokenByHash, so the row's MAC is checked as for a bearer.
	t, err := s.TokenByHash(ctx, hash)
	if err != nil {
		return storage.APIToken{}, err
	}
	if t.ID != id {
		return storage.APIToken{}, wrapOp("token by id", storage.ErrNotFound)
	}
	return t, nil
}

// validOptText is validText for a column that may be empty.
func validOptText(what, s string) error {
	if s == "" {
		return nil
	}
	return validText(what, s)
}
