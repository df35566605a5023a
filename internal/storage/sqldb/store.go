package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

var _ storage.Store = (*Store)(nil)

var errNoRows = sql.ErrNoRows

// Defaults for Options.
const (
	// DefaultMaxAttempts bounds how often Update runs fn when the
	// transaction loses a race. Eight attempts with the backoff below
	// wait at most about 0.5 s in total before ErrUnavailable.
	DefaultMaxAttempts = 8

	// retryBase is the first backoff; it doubles per attempt (with
	// jitter from the attempt count, not from a global random source).
	retryBase = 2 * time.Millisecond

	// scanBatch is how many rows ScanVersions, ScanKeys and ScanAudit
	// read per query. 256 versions of ~2 KiB is ~0.5 MiB in memory.
	scanBatch = 256

	// insertChunk is the number of rows per multi-row INSERT: 200 rows of
	// 7 parameters stay well under SQLite's 32766 parameter limit.
	insertChunk = 200
)

// Options tunes a Store. The zero value means the defaults.
type Options struct {
	// Now is the clock for the delete markers Shred appends. Default
	// time.Now.
	Now func() time.Time

	// MaxAttempts bounds the runs of fn in Update. Default
	// DefaultMaxAttempts; must not be negative.
	MaxAttempts int
}

// Store implements storage.Store on database/sql for any Dialect. It is
// safe for concurrent use. Writes go through writer; reads outside a
// transaction go through reader (which may be the same *sql.DB).
type Store struct {
	d           Dialect
	writer      *sql.DB
	reader      *sql.DB
	ws, rs      *stmtCache
	now         func() time.Time
	maxAttempts int
	group       *committer // nil unless Dialect.GroupCommit
	// auth authenticates the rows that grant access (authrows.go); nil
	// until SetRowAuth.
	auth atomic.Pointer[rowAuth]
}

// New wraps open database handles; the schema must already be at head
// (see Migrate). The Store owns the handles: Close closes them.
func New(writer, reader *sql.DB, d Dialect, opts Options) (*Store, error) {
	if writer == nil || reader == nil {
		return nil, errors.New("sqldb: new store: nil database handle")
	}
	if d.Classify == nil {
		return nil, errors.New("sqldb: new store: Dialect.Classify is nil")
	}
	if opts.MaxAttempts < 0 {
		return nil, fmt.Errorf("sqldb: new store: Options.MaxAttempts %d is negative", opts.MaxAttempts)
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if d.InsertIndex == "" {
		d.InsertIndex = "INSERT INTO"
	}
	st := &Store{
		d:           d,
		writer:      writer,
		reader:      reader,
		ws:          newStmtCache(writer, d.Dollar),
		rs:          newStmtCache(reader, d.Dollar),
		now:         opts.Now,
		maxAttempts: opts.MaxAttempts,
	}
	if d.GroupCommit {
		st.group = newCommitter(st)
	}
	return st, nil
}

// Close closes the prepared statements and both handles.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	s.ws.close()
	s.rs.close()
	err := s.writer.Close()
	if s.reader != s.writer {
		err = errors.Join(err, s.reader.Close())
	}
	return err
}

// Pools returns the connection pools by role, "writer" and, when reads
// have a pool of their own (SQLite), "reader": for the pool metrics
// (sql.DB.Stats). Nothing else may query through them.
func (s *Store) Pools() map[string]*sql.DB {
	p := map[string]*sql.DB{"writer": s.writer}
	if s.reader != s.writer {
		p["reader"] = s.reader
	}
	return p
}

// Ping checks that the writer and the reader can reach the database
// (a health check); it returns an error wrapping storage.ErrUnavailable
// otherwise.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.writer, s.reader} {
		if err := db.PingContext(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("ping %s: %w", s.d.Name, ctx.Err())
			}
			return fmt.Errorf("ping %s: %w: %w", s.d.Name, storage.ErrUnavailable, err)
		}
	}
	return nil
}

// Update implements storage.Store. It retries fn (after a rollback and a
// short backoff) when the attempt failed with an error marked retryable:
// serialization failure, deadlock, busy, or Put losing a create race.
// After Options.MaxAttempts it returns an error wrapping
// storage.ErrUnavailable. When a committed transaction appended audit
// records, ctx's request is noted (package trail).
func (s *Store) Update(ctx context.Context, fn func(tx storage.Tx) error) error {
	var last error
	for attempt := range s.maxAttempts {
		if attempt > 0 {
			// 2, 4, 8 ... ms, plus a spread that differs per attempt so
			// two losers do not collide again in lock step.
			d := retryBase<<(attempt-1) + time.Duration(attempt*attempt)*137*time.Microsecond
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("update: %w", ctx.Err())
			case <-t.C:
			}
		}
		var err error
		if s.group != nil {
			err = s.group.update(ctx, fn)
		} else {
			err = s.updateOnce(ctx, fn)
		}
		if err == nil || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
		last = err
	}
	return fmt.Errorf("update: giving up after %d attempts: %w (last: %v)", s.maxAttempts, storage.ErrUnavailable, last)
}

func (s *Store) updateOnce(ctx context.Context, fn func(tx storage.Tx) error) (err error) {
	sqlTx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return s.translate("begin", err)
	}
	t := &tx{s: s, tx: sqlTx}
	defer func() {
		if err != nil {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return s.translate("commit", err)
	}
	if t.audited {
		trail.Note(ctx)
	}
	// Statements this transaction ran unprepared are prepared now that
	// the connection is free; a failure only means they run unprepared
	// again next time.
	for _, q := range t.unprepared {
		_, _ = s.ws.get(ctx, q)
	}
	return nil
}

// AppendAudit implements storage.Store.
func (s *Store) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.Update(ctx, func(tx storage.Tx) error { return tx.AppendAudit(ctx, recs...) })
}

// reader runner: statements cached on the reader pool.
func (s *Store) r() runner { return readRunner{s} }

// Current implements storage.Reader.
func (s *Store) Current(ctx context.Context, typ, id string) (storage.Version, error) {
	return current(ctx, s.r(), typ, id, "")
}

// VersionOf implements storage.Reader.
func (s *Store) VersionOf(ctx context.Context, typ, id string, version int64) (storage.Version, error) {
	return versionOf(ctx, s, s.r(), typ, id, version)
}

// VersionOf implements storage.Tx.
func (t *tx) VersionOf(ctx context.Context, typ, id string, version int64) (storage.Version, error) {
	return versionOf(ctx, t.s, t, typ, id, version)
}

func versionOf(ctx context.Context, s *Store, r runner, typ, id string, version int64) (storage.Version, error) {
	const q = `SELECT type, id, version, owner, deleted, last_updated, ciphertext FROM resource_versions WHERE type = ? AND id = ? AND version = ?`
	rows, err := r.query(ctx, q, typ, id, version)
	if err != nil {
		return storage.Version{}, s.translate("version of", err)
	}
	vs, err := scanVersions(rows)
	if err != nil {
		return storage.Version{}, s.translate("version of", err)
	}
	if len(vs) == 0 {
		return storage.Version{}, wrapOp("version of", storage.ErrNotFound)
	}
	return vs[0], nil
}

// History implements storage.Reader.
func (s *Store) History(ctx context.Context, q storage.HistoryQuery) ([]storage.Version, error) {
	if q.Count <= 0 || q.Offset < 0 {
		return nil, fmt.Errorf("history: count %d must be positive and offset %d not negative", q.Count, q.Offset)
	}
	if q.ID != "" && q.Type == "" {
		return nil, errors.New("history: an id needs a type")
	}
	if len(q.Current) > 0 {
		if q.Type == "" {
			return nil, errors.New("history: narrowing on the current version needs a type")
		}
		if err := checkQuery(storage.Query{Type: q.Type, Clauses: q.Current}); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
	}
	b := &builder{dollar: s.d.Dollar}
	b.sql(`SELECT v.type, v.id, v.version, v.owner, v.deleted, v.last_updated, v.ciphertext FROM resource_versions v`)
	if len(q.Current) > 0 {
		b.sql(` JOIN resources r ON r.type = v.type AND r.id = v.id`)
	}
	b.sql(` WHERE 1 = 1`)
	if q.Type != "" {
		b.sql(" AND v.type = ").arg(q.Type)
	}
	if q.ID != "" {
		b.sql(" AND v.id = ").arg(q.ID)
	}
	if !q.Since.IsZero() {
		b.sql(" AND v.last_updated >= ").arg(q.Since.UnixMicro())
	}
	if !q.AtTo.IsZero() {
		b.sql(" AND v.last_updated <= ").arg(q.AtTo.UnixMicro())
		b.sql(" AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.type = v.type AND n.id = v.id AND n.version > v.version AND n.last_updated <= ").arg(q.AtFrom.UnixMicro()).sql(")")
	}
	if o := q.Owners; o != nil {
		switch {
		case len(o.In) > storage.MaxOwners:
			return nil, fmt.Errorf("history: %d owners, limit %d: %w", len(o.In), storage.MaxOwners, storage.ErrTooComplex)
		case len(o.In) == 0 && !o.Except:
			b.sql(" AND 1 = 0")
		case len(o.In) > 0:
			b.sql(" AND v.owner ")
			if o.Except {
				b.sql("NOT ")
			}
			b.sql("IN ")
			list(b, o.In, func(o ident.Owner) any { return string(o) })
		}
	}
	for _, cl := range q.Current {
		b.sql(" AND (")
		for i, c := range cl.Any {
			if i > 0 {
				b.sql(" OR ")
			}
			cond(b, q.Type, c, true)
		}
		b.sql(")")
	}
	b.sql(" ORDER BY v.last_updated DESC, v.type, v.id, v.version DESC LIMIT ").arg(int64(q.Count)).sql(" OFFSET ").arg(int64(q.Offset))
	rows, err := s.reader.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, s.translate("history", err)
	}
	vs, err := scanVersions(rows)
	return vs, s.translate("history", err)
}

// Search implements storage.Reader.
func (s *Store) Search(ctx context.Context, q storage.Query) (storage.Result, error) {
	return search(ctx, s, s.reader, q)
}

// Key implements storage.Reader.
func (s *Store) Key(ctx context.Context, owner ident.Owner) (storage.KeyRecord, error) {
	return key(ctx, s, s.r(), owner)
}

// ScanVersions implements storage.Reader. Each batch is one short query
// on the reader pool; fn runs between queries, never inside one.
func (s *Store) ScanVersions(ctx context.Context, after storage.VersionRef, fn func(storage.Version) error) error {
	const q = `SELECT type, id, version, owner, deleted, last_updated, ciphertext FROM resource_versions
WHERE (type, id, version) > (?, ?, ?) ORDER BY type, id, version LIMIT ?`
	for {
		rows, err := s.r().query(ctx, q, after.Type, after.ID, after.Version, scanBatch)
		if err != nil {
			return s.translate("scan versions", err)
		}
		vs, err := scanVersions(rows)
		if err != nil {
			return s.translate("scan versions", err)
		}
		for _, v := range vs {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(vs) < scanBatch {
			return nil
		}
		last := vs[len(vs)-1]
		after = storage.VersionRef{Type: last.Type, ID: last.ID, Version: last.Version}
	}
}

// ScanKeys implements storage.Reader.
func (s *Store) ScanKeys(ctx context.Context, fn func(storage.KeyRecord) error) error {
	const q = `SELECT owner, wrapped, kek_id, created, shredded, ledger FROM keys WHERE owner > ? ORDER BY owner LIMIT ?`
	var after ident.Owner
	for {
		rows, err := s.r().query(ctx, q, string(after), scanBatch)
		if err != nil {
			return s.translate("scan keys", err)
		}
		ks, err := scanKeys(rows)
		if err != nil {
			return s.translate("scan keys", err)
		}
		for _, k := range ks {
			if err := fn(k); err != nil {
				return err
			}
		}
		if len(ks) < scanBatch {
			return nil
		}
		after = ks[len(ks)-1].Owner
	}
}

// ScanAudit implements storage.Reader.
func (s *Store) ScanAudit(ctx context.Context, after int64, fn func(seq int64, rec storage.AuditRecord) error) error {
	const q = `SELECT seq, recorded_at, body FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`
	type row struct {
		seq int64
		rec storage.AuditRecord
	}
	for {
		rows, err := s.r().query(ctx, q, after, scanBatch)
		if err != nil {
			return s.translate("scan audit", err)
		}
		var batch []row
		for rows.Next() {
			var r row
			var at int64
			if err := rows.Scan(&r.seq, &at, &r.rec.Body); err != nil {
				rows.Close()
				return s.translate("scan audit", err)
			}
			r.rec.Time = fromMicros(at)
			batch = append(batch, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return s.translate("scan audit", err)
		}
		for _, r := range batch {
			if err := fn(r.seq, r.rec); err != nil {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		after = batch[len(batch)-1].seq
	}
}

// Types implements storage.Reader.
func (s *Store) Types(ctx context.Context) ([]string, error) {
	const q = `SELECT DISTINCT type FROM resources ORDER BY type`
	rows, err := s.r().query(ctx, q)
	if err != nil {
		return nil, s.translate("types", err)
	}
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, s.translate("types", err)
		}
		out = append(out, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, s.translate("types", err)
	}
	return out, nil
}

// Counts implements storage.Reader.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	const q = `SELECT type, COUNT(*) FROM resources WHERE NOT deleted GROUP BY type`
	rows, err := s.r().query(ctx, q)
	if err != nil {
		return nil, s.translate("counts", err)
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, s.translate("counts", err)
		}
		out[typ] = n
	}
	return out, s.translate("counts", rows.Err())
}

// current reads the current pointer and its version row. lockRows is
// the dialect's row-lock suffix inside a write transaction.
func current(ctx context.Context, r runner, typ, id, lockRows string) (storage.Version, error) {
	q := `SELECT r.type, r.id, r.version, r.owner, r.deleted, r.last_updated, v.ciphertext
FROM resources r JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version
WHERE r.type = ? AND r.id = ?` + lockRows
	rows, err := r.query(ctx, q, typ, id)
	if err != nil {
		return storage.Version{}, r.store().translate("current", err)
	}
	vs, err := scanVersions(rows)
	if err != nil {
		return storage.Version{}, r.store().translate("current", err)
	}
	if len(vs) == 0 {
		return storage.Version{}, wrapOp("current", storage.ErrNotFound)
	}
	return vs[0], nil
}

func key(ctx context.Context, s *Store, r runner, owner ident.Owner) (storage.KeyRecord, error) {
	const q = `SELECT owner, wrapped, kek_id, created, shredded, ledger FROM keys WHERE owner = ?`
	rows, err := r.query(ctx, q, owner)
	if err != nil {
		return storage.KeyRecord{}, s.translate("key", err)
	}
	ks, err := scanKeys(rows)
	if err != nil {
		return storage.KeyRecord{}, s.translate("key", err)
	}
	if len(ks) == 0 {
		return storage.KeyRecord{}, wrapOp("key", storage.ErrNotFound)
	}
	return ks[0], nil
}

// scanVersions reads and closes rows of (type, id, version, owner,
// deleted, last_updated, ciphertext).
func scanVersions(rows *sql.Rows) ([]storage.Version, error) {
	defer rows.Close()
	var out []storage.Version
	for rows.Next() {
		var v storage.Version
		var lu int64
		if err := rows.Scan(&v.Type, &v.ID, &v.Version, &v.Owner, &v.Deleted, &lu, &v.Ciphertext); err != nil {
			return nil, err
		}
		v.LastUpdated = fromMicros(lu)
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanKeys(rows *sql.Rows) ([]storage.KeyRecord, error) {
	defer rows.Close()
	var out []storage.KeyRecord
	for rows.Next() {
		var k storage.KeyRecord
		var kek, created int64
		if err := rows.Scan(&k.Owner, &k.Wrapped, &kek, &created, &k.Shredded, &k.Ledger); err != nil {
			return nil, err
		}
		k.KEKID = uint32(kek)
		k.Created = fromMicros(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullBytes binds nil as SQL NULL (drivers differ on nil []byte).
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// runner runs the fixed statements of this package, prepared once per
// connection, either on the reader pool or inside a write transaction.
type runner interface {
	query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	exec(ctx context.Context, q string, args ...any) (sql.Result, error)
	store() *Store
}

type readRunner struct{ s *Store }

func (r readRunner) store() *Store { return r.s }

func (r readRunner) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.s.rs.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (r readRunner) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return nil, errors.New("sqldb: exec on the read-only pool")
}

// stmtCache holds statements prepared on one *sql.DB, keyed by their
// ?-form text. Only statements written in this package enter it, so it
// is bounded by the code, not by input.
type stmtCache struct {
	db     *sql.DB
	dollar bool
	mu     sync.RWMutex
	m      map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB, dollar bool) *stmtCache {
	return &stmtCache{db: db, dollar: dollar, m: make(map[string]*sql.Stmt)}
}

// lookup returns the prepared statement for q, or nil.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[q]
}

// get returns the prepared statement for q, preparing it on a free
// connection of the pool. It must not be called while the caller holds
// a connection of a pool that may have only one (the SQLite writer):
// transactions use lookup and prepare after commit.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := c.lookup(q); st != nil {
		return st, nil
	}
	// Prepare without holding mu: waiting for a connection while holding
	// it would block a transaction that owns the only writer connection
	// and needs a lookup.
	st, err := c.db.PrepareContext(ctx, rebind(c.dollar, q))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[q]; prev != nil {
		st.Close()
		return prev, nil
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// SchemaVersion returns the highest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return SchemaVersion(ctx, s.writer)
}
