package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

var _ storage.Tx = (*tx)(nil)

// auditLock is the Lock name AppendAudit takes so that audit sequence
// numbers are assigned in commit order across processes: a bigserial
// value is drawn at INSERT, so without it a reader could see seq 11
// committed before seq 10 and skip 10 for ever.
const auditLock = "audit-sequence"

// tx is one write transaction. Not safe for concurrent use.
type tx struct {
	s  *Store
	tx *sql.Tx

	// seen records the version each Current call observed (0 for not
	// found), so Put can tell a lost race (retry) from a stale
	// expectation of the caller (ErrConflict).
	seen map[[2]string]int64

	// unprepared lists the statements that ran without a cached
	// prepared form; Update prepares them after commit.
	unprepared []string

	// detach runs statements without the caller's cancellation: in a
	// group commit, interrupting one caller's statement could roll back
	// the transaction the whole group shares.
	detach bool

	// audited is set once AppendAudit succeeded: after commit, the
	// request of the Update's context is noted (package trail).
	audited bool

	// live lists the owners whose key record this transaction found
	// live (not shredded) and, on engines with several writers, holds
	// locked: Put checks each owner once. Shred removes its owner.
	live map[ident.Owner]bool
}

func (t *tx) stmtCtx(ctx context.Context) context.Context {
	if t.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (t *tx) store() *Store { return t.s }

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = t.stmtCtx(ctx)
	if st := t.s.ws.lookup(q); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	t.note(q)
	return t.tx.QueryContext(ctx, rebind(t.s.d.Dollar, q), args...)
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = t.stmtCtx(ctx)
	if st := t.s.ws.lookup(q); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	t.note(q)
	return t.tx.ExecContext(ctx, rebind(t.s.d.Dollar, q), args...)
}

func (t *tx) note(q string) {
	if !slices.Contains(t.unprepared, q) {
		t.unprepared = append(t.unprepared, q)
	}
}

// Current implements storage.Tx. On PostgreSQL it locks the resource's
// current row until the end of the transaction, so a read-modify-write
// of an existing resource cannot lose a race.
func (t *tx) Current(ctx context.Context, typ, id string) (storage.Version, error) {
	v, err := current(ctx, t, typ, id, t.s.d.LockRows)
	if t.seen == nil {
		t.seen = make(map[[2]string]int64)
	}
	switch {
	case err == nil:
		t.seen[[2]string{typ, id}] = v.Version
	case errors.Is(err, storage.ErrNotFound):
		t.seen[[2]string{typ, id}] = 0
	}
	return v, err
}

// Search implements storage.Tx.
func (t *tx) Search(ctx context.Context, q storage.Query) (storage.Result, error) {
	return search(ctx, t.s, t.tx, q)
}

// Key implements storage.Tx. It locks the record (Dialect.LockKey)
// until commit, so a concurrent Shred of owner waits for this
// transaction, and a write sealed with the key it returns cannot
// commit after the erasure.
func (t *tx) Key(ctx context.Context, owner ident.Owner) (storage.KeyRecord, error) {
	if err := t.holdOwner(ctx, "key", owner); err != nil {
		return storage.KeyRecord{}, err
	}
	k, err := key(ctx, t.s, t, owner)
	if err == nil && !k.Shredded {
		t.noteLive(owner)
	}
	return k, err
}

func (t *tx) noteLive(owner ident.Owner) {
	if t.live == nil {
		t.live = make(map[ident.Owner]bool)
	}
	t.live[owner] = true
}

// ownerLock names the lock that serialises writes of an owner's
// versions against the owner's erasure: writes take it shared
// (holdOwner), shredOne exclusively. Owners share ownerLocks locks (by
// hash), so a transaction Bundle naming thousands of patients holds at
// most that many (PostgreSQL's lock table is bounded); an erasure then
// also waits for the writes of the other owners of its lock, which
// never wait for each other.
func ownerLock(owner ident.Owner) string {
	h := fnv.New64a()
	h.Write([]byte(owner))
	return "owner-key/" + strconv.FormatUint(h.Sum64()%ownerLocks, 10)
}

const ownerLocks = 256

// holdOwner takes owner's lock shared until commit (a no-op on engines
// with a single writer). It is taken before the key record is read, so
// the read (READ COMMITTED: a snapshot per statement) sees an erasure
// that held the lock. An advisory lock, not a row lock on the key
// record: its waiters queue in order, so a steady stream of writes
// cannot starve an erasure waiting for it.
func (t *tx) holdOwner(ctx context.Context, op string, owner ident.Owner) error {
	if t.s.d.LockSharedSQL == "" || t.live[owner] {
		return nil
	}
	if _, err := t.exec(ctx, t.s.d.LockSharedSQL, lockKey(ownerLock(owner))); err != nil {
		return t.s.translate(op, err)
	}
	return nil
}

// checkLive fails with ErrErased if owner's key record is shredded. It
// reads the record inside the transaction, holding owner's lock shared
// until commit on engines with several writers (holdOwner): an erasure
// takes it exclusively before it destroys the record and erases the
// owner's rows (shredOne), so a write either commits first and is
// erased with the rest, or waits for the erasure and is refused here.
// An owner without a key record passes: it has nothing to shred (the
// record service stores the key before any version).
func (t *tx) checkLive(ctx context.Context, op string, owner ident.Owner) error {
	if t.live[owner] {
		return nil
	}
	if err := t.holdOwner(ctx, op, owner); err != nil {
		return err
	}
	const q = `SELECT shredded FROM keys WHERE owner = ?`
	rows, err := t.query(ctx, q, owner)
	if err != nil {
		return t.s.translate(op, err)
	}
	shredded, found := false, false
	for rows.Next() {
		if err := rows.Scan(&shredded); err != nil {
			rows.Close()
			return t.s.translate(op, err)
		}
		found = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return t.s.translate(op, err)
	}
	if found && shredded {
		return wrapOp(op, storage.ErrErased)
	}
	t.noteLive(owner)
	return nil
}

// Put implements storage.Tx.
func (t *tx) Put(ctx context.Context, v storage.Version, index []storage.IndexRow) error {
	if err := validVersion(v, index); err != nil {
		return err
	}
	if err := t.checkLive(ctx, "put", v.Owner); err != nil {
		return err
	}
	lu := v.LastUpdated.UnixMicro()
	var res sql.Result
	var err error
	if v.Version == 1 {
		const q = `INSERT INTO resources (type, id, version, owner, deleted, last_updated) VALUES (?, ?, 1, ?, ?, ?)
ON CONFLICT (type, id) DO NOTHING`
		res, err = t.exec(ctx, q, v.Type, v.ID, v.Owner, v.Deleted, lu)
	} else {
		const q = `UPDATE resources SET version = ?, owner = ?, deleted = ?, last_updated = ? WHERE type = ? AND id = ? AND version = ?`
		res, err = t.exec(ctx, q, v.Version, v.Owner, v.Deleted, lu, v.Type, v.ID, v.Version-1)
	}
	if err != nil {
		return t.s.translate("put", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate("put", err)
	}
	k := [2]string{v.Type, v.ID}
	if n == 0 {
		if seen, ok := t.seen[k]; ok && seen == v.Version-1 {
			// This transaction saw version-1 and another one committed
			// in between (a concurrent create): running fn again will
			// see the winner's write.
			return wrapOp("put", &dbError{kind: storage.ErrConflict, err: errLostRace, retry: true})
		}
		return wrapOp("put", storage.ErrConflict)
	}
	const qv = `INSERT INTO resource_versions (type, id, version, owner, last_updated, deleted, ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?)`
	if _, err := t.exec(ctx, qv, v.Type, v.ID, v.Version, v.Owner, lu, v.Deleted, nullBytes(v.Ciphertext)); err != nil {
		return t.s.translate("put version", err)
	}
	if v.Version > 1 {
		// A new resource has no index rows yet: skipping the DELETE
		// saves a statement per created resource during imports.
		const qd = `DELETE FROM search_index WHERE type = ? AND id = ?`
		if _, err := t.exec(ctx, qd, v.Type, v.ID); err != nil {
			return t.s.translate("put index", err)
		}
	}
	if !v.Deleted {
		if err := t.insertIndex(ctx, v.Type, v.ID, index); err != nil {
			return err
		}
	}
	if t.seen != nil {
		t.seen[k] = v.Version
	}
	return nil
}

// ReplaceIndex implements storage.Tx.
func (t *tx) ReplaceIndex(ctx context.Context, typ, id string, version int64, index []storage.IndexRow) error {
	if err := validVersion(storage.Version{Type: typ, ID: id, Owner: "x", Version: version}, index); err != nil {
		return err
	}
	cur, err := t.Current(ctx, typ, id)
	if err != nil {
		return err
	}
	if cur.Version != version {
		return wrapOp("replace index", storage.ErrConflict)
	}
	const qd = `DELETE FROM search_index WHERE type = ? AND id = ?`
	if _, err := t.exec(ctx, qd, typ, id); err != nil {
		return t.s.translate("replace index", err)
	}
	if cur.Deleted {
		return nil
	}
	return t.insertIndex(ctx, typ, id, index)
}

func (t *tx) insertIndex(ctx context.Context, typ, id string, index []storage.IndexRow) error {
	for len(index) > 0 {
		n := min(len(index), insertChunk)
		q := multiRow(t.s.d.InsertIndex+` search_index (type, id, param, h, lo, hi) VALUES `, 6, n)
		args := make([]any, 0, 6*n)
		for _, r := range index[:n] {
			if r.IsDate {
				args = append(args, typ, id, r.Param, nil, r.Lo, r.Hi)
			} else {
				args = append(args, typ, id, r.Param, r.Hash, nil, nil)
			}
		}
		if _, err := t.exec(ctx, q, args...); err != nil {
			return t.s.translate("put index", err)
		}
		index = index[n:]
	}
	return nil
}

// multiRow returns prefix followed by n groups of cols placeholders.
func multiRow(prefix string, cols, n int) string {
	group := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(len(prefix) + n*(len(group)+2))
	b.WriteString(prefix)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(group)
	}
	return b.String()
}

// PutKey implements storage.Tx.
func (t *tx) PutKey(ctx context.Context, k storage.KeyRecord) error {
	if err := validText("key owner", string(k.Owner)); err != nil {
		return err
	}
	if err := t.checkFence(ctx, "put key", k.KEKID); err != nil {
		return err
	}
	const q = `INSERT INTO keys (owner, wrapped, kek_id, created, shredded, ledger) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner) DO NOTHING`
	res, err := t.exec(ctx, q, k.Owner, nullBytes(k.Wrapped), int64(k.KEKID), k.Created.UnixMicro(), k.Shredded, nullBytes(k.Ledger))
	if err != nil {
		return t.s.translate("put key", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.s.translate("put key", err)
	} else if n == 0 {
		return wrapOp("put key", storage.ErrConflict)
	}
	return nil
}

// ReplaceKey implements storage.Tx.
func (t *tx) ReplaceKey(ctx context.Context, k storage.KeyRecord) error {
	if k.Wrapped == nil {
		return errors.New("replace key: nil wrapped key (use Shred to destroy a key)")
	}
	if err := t.checkFence(ctx, "replace key", k.KEKID); err != nil {
		return err
	}
	// A record without a ledger secret keeps the stored one (a KEK
	// re-wrap does not touch it).
	const q = `UPDATE keys SET wrapped = ?, kek_id = ?, ledger = COALESCE(?, ledger) WHERE owner = ? AND NOT shredded`
	res, err := t.exec(ctx, q, k.Wrapped, int64(k.KEKID), nullBytes(k.Ledger), k.Owner)
	if err != nil {
		return t.s.translate("replace key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate("replace key", err)
	}
	if n == 1 {
		return nil
	}
	if _, err := t.Key(ctx, k.Owner); err != nil {
		return fmt.Errorf("replace key: %w", err)
	}
	return fmt.Errorf("replace key: key is shredded: %w", storage.ErrConflict)
}

// RewriteCiphertext implements storage.Tx.
func (t *tx) RewriteCiphertext(ctx context.Context, ref storage.VersionRef, ciphertext []byte) error {
	const q = `UPDATE resource_versions SET ciphertext = ? WHERE type = ? AND id = ? AND version = ?`
	res, err := t.exec(ctx, q, nullBytes(ciphertext), ref.Type, ref.ID, ref.Version)
	if err != nil {
		return t.s.translate("rewrite ciphertext", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate("rewrite ciphertext", err)
	}
	if n == 0 {
		return wrapOp("rewrite ciphertext", storage.ErrNotFound)
	}
	return nil
}

// Shred implements storage.Tx.
func (t *tx) Shred(ctx context.Context, owner ident.Owner) (int64, error) {
	n, err := t.shredOne(ctx, owner)
	if err != nil || !strings.HasPrefix(string(owner), ident.PatientPrefix) {
		return n, err
	}
	// Every joint key naming the patient goes with it: a resource that
	// names several patients is unreadable once any of them is erased.
	joints, err := t.jointOwnersOf(ctx, owner)
	if err != nil {
		return 0, err
	}
	for _, j := range joints {
		m, err := t.shredOne(ctx, j)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// shredOne crypto-shreds one key owner (see storage.Tx.Shred).
//
// Writes read the key record inside their transaction holding the
// owner's lock shared (checkLive, Key). The erasure moves the owner's
// live resources to delete markers (locking their rows, so a write that
// updates one waits for the erasure before it asks for the owner's
// lock: no deadlock), then takes the owner's lock exclusively, which
// waits for every write holding it; every later statement (READ
// COMMITTED: a snapshot per statement) sees what those wrote, so the
// pointers are moved again, and the index rows and ciphertext go after
// the lock. A write that comes later waits for the erasure and finds
// the record shredded.
func (t *tx) shredOne(ctx context.Context, owner ident.Owner) (int64, error) {
	now := t.s.now().UTC().UnixMicro()
	delete(t.live, owner)
	refs, err := t.shredPointers(ctx, owner, now)
	if err != nil {
		return 0, err
	}
	if err := t.Lock(ctx, ownerLock(owner)); err != nil {
		return 0, err
	}
	const qk = `UPDATE keys SET wrapped = NULL, ledger = NULL, shredded = ? WHERE owner = ?`
	if _, err := t.exec(ctx, qk, true, owner); err != nil {
		return 0, t.s.translate("shred key", err)
	}
	if t.s.d.LockSQL != "" {
		// Resources created by writes that held the key record until
		// the update above could take it.
		more, err := t.shredPointers(ctx, owner, now)
		if err != nil {
			return 0, err
		}
		refs = append(refs, more...)
	}
	for rest := refs; len(rest) > 0; {
		n := min(len(rest), insertChunk)
		q := multiRow(`INSERT INTO resource_versions (type, id, version, owner, last_updated, deleted, ciphertext) VALUES `, 7, n)
		args := make([]any, 0, 7*n)
		for _, r := range rest[:n] {
			args = append(args, r.Type, r.ID, r.Version, owner, now, true, nil)
			if t.seen != nil {
				t.seen[[2]string{r.Type, r.ID}] = r.Version
			}
		}
		if _, err := t.exec(ctx, q, args...); err != nil {
			return 0, t.s.translate("shred", err)
		}
		rest = rest[n:]
	}
	const qi = `DELETE FROM search_index WHERE EXISTS (SELECT 1 FROM resources r WHERE r.type = search_index.type AND r.id = search_index.id AND r.owner = ?)`
	if _, err := t.exec(ctx, qi, owner); err != nil {
		return 0, t.s.translate("shred index", err)
	}
	// The ciphertext of every version owner sealed goes in the same
	// transaction: a process of a fleet that still caches the key
	// record (or holds the unwrapped key) finds nothing to decrypt in a
	// version it reads after this commits, and answers 410.
	const qc = `UPDATE resource_versions SET ciphertext = NULL WHERE owner = ? AND ciphertext IS NOT NULL`
	if _, err := t.exec(ctx, qc, owner); err != nil {
		return 0, t.s.translate("shred ciphertext", err)
	}
	return int64(len(refs)), nil
}

// shredPointers moves every live resource of owner to a delete marker
// version (the pointer; shredOne inserts the version rows) and reports
// which. One statement does it, so no concurrent create slips between
// the pointer update and the marker rows.
func (t *tx) shredPointers(ctx context.Context, owner ident.Owner, now int64) ([]storage.VersionRef, error) {
	const qu = `UPDATE resources SET version = version + 1, deleted = ?, last_updated = ? WHERE owner = ? AND NOT deleted RETURNING type, id, version`
	rows, err := t.query(ctx, qu, true, now, owner)
	if err != nil {
		return nil, t.s.translate("shred", err)
	}
	var refs []storage.VersionRef
	for rows.Next() {
		var r storage.VersionRef
		if err := rows.Scan(&r.Type, &r.ID, &r.Version); err != nil {
			rows.Close()
			return nil, t.s.translate("shred", err)
		}
		refs = append(refs, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, t.s.translate("shred", err)
	}
	return refs, nil
}

// AppendAudit implements storage.Tx.
//
// An append that fails as unavailable (not to be retried: a lock or
// statement timeout, a lost connection) marks ctx's request failed
// (package trail), and an append for a request so marked fails at once:
// one request waits out a locked audit table once.
func (t *tx) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) (err error) {
	if len(recs) == 0 {
		return nil
	}
	if trail.Failed(ctx) {
		return wrapOp("append audit", &dbError{kind: storage.ErrUnavailable, err: errAuditFailed})
	}
	defer func() {
		if err != nil && errors.Is(err, storage.ErrUnavailable) && !isRetryable(err) {
			trail.Fail(ctx)
		}
	}()
	if err := t.Lock(ctx, auditLock); err != nil {
		return err
	}
	for len(recs) > 0 {
		n := min(len(recs), insertChunk)
		q := multiRow(`INSERT INTO audit_events (recorded_at, body, leaf_hash) VALUES `, 3, n)
		args := make([]any, 0, 3*n)
		for _, r := range recs[:n] {
			args = append(args, r.Time.UnixMicro(), r.Body, nullBytes(r.LeafHash))
		}
		if _, err := t.exec(ctx, q, args...); err != nil {
			return t.s.translate("append audit", err)
		}
		recs = recs[n:]
	}
	t.audited = true
	return nil
}

// errAuditFailed: an earlier audit append of the request failed.
var errAuditFailed = errors.New("an earlier audit event of this request could not be recorded")

// Lock implements storage.Tx.
func (t *tx) Lock(ctx context.Context, name string) error {
	if t.s.d.LockSQL == "" {
		return nil
	}
	if _, err := t.exec(ctx, t.s.d.LockSQL, lockKey(name)); err != nil {
		return t.s.translate("lock", err)
	}
	return nil
}

func validVersion(v storage.Version, index []storage.IndexRow) error {
	for _, f := range [...]struct{ name, val string }{{"type", v.Type}, {"id", v.ID}, {"owner", string(v.Owner)}} {
		if err := validText("put: "+f.name, f.val); err != nil {
			return err
		}
	}
	if v.Version < 1 {
		return fmt.Errorf("put: version %d is not positive", v.Version)
	}
	for i, r := range index {
		if err := validText("put: index param", r.Param); err != nil {
			return err
		}
		switch {
		case r.IsDate && r.Hash != nil:
			return fmt.Errorf("put: index row %d has both a hash and a date range", i)
		case r.IsDate && r.Lo > r.Hi:
			return fmt.Errorf("put: index row %d has an empty date range", i)
		case !r.IsDate && r.Hash == nil:
			return fmt.Errorf("put: index row %d has neither a hash nor a date range", i)
		}
	}
	return nil
}

// validText rejects what one of the engines cannot store in a text
// column, so both behave the same. The value itself is not echoed: it
// may be an identifier derived from PHI.
func validText(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s is not valid UTF-8 without NUL bytes", what)
	}
	return nil
}
