package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// Defaults for Options.
const (
	// DefaultBusyTimeout is how long a connection waits for a lock held
	// by another connection (the writer, a checkpoint, a backup) before
	// SQLITE_BUSY, which Update retries and then reports as
	// storage.ErrUnavailable.
	DefaultBusyTimeout = 5 * time.Second
)

// Options configures Open. The zero value means the defaults.
type Options struct {
	// Readers is the size of the read-only connection pool. Default
	// 2 × GOMAXPROCS; must not be negative.
	Readers int

	// BusyTimeout is PRAGMA busy_timeout. Default DefaultBusyTimeout;
	// must not be negative.
	BusyTimeout time.Duration

	// MapReaders makes the readers read the file through a memory map
	// (readerMmapBytes). That is faster for a scan of the whole file
	// (verify reads every entry bundle) and slower for a server's random
	// reads: SQLite does not keep the pages a read-only connection gets
	// from the map in its cache, so every page a query touches is
	// initialised again (btreeInitPage was 24 % of a search-heavy
	// server's CPU; searches ran 2.3-3.9 times faster without the map,
	// bench/README.md). Default false.
	MapReaders bool

	// Store tunes the shared implementation (clock, retry bound).
	Store sqldb.Options
}

// Open opens (creating it with mode 0600 if missing) the SQLite database
// at path, migrates it to head and returns the store. The caller must
// Close it. Only one process may open a database at a time: the single
// writer connection is what makes Lock a no-op.
func Open(ctx context.Context, path string, opts Options) (*sqldb.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if opts.Readers < 0 {
		return nil, fmt.Errorf("sqlite: open: Options.Readers %d is negative", opts.Readers)
	}
	if opts.Readers == 0 {
		opts.Readers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.BusyTimeout < 0 {
		return nil, fmt.Errorf("sqlite: open: Options.BusyTimeout %v is negative", opts.BusyTimeout)
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Create the file ourselves so it is 0600 from the first byte;
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	f.Close()

	writer, err := sql.Open("sqlite", DSN(abs, opts.BusyTimeout, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	if err := quickCheck(ctx, abs, opts.BusyTimeout); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", filepath.Base(abs), err)
	}
	d := Dialect()
	if err := sqldb.Migrate(ctx, writer, d); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", filepath.Base(abs), err)
	}

	dsn := DSN(abs, opts.BusyTimeout, false)
	if !opts.MapReaders {
		dsn = unmapped(dsn)
	}
	reader, err := sql.Open("sqlite", dsn)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)
	reader.SetConnMaxIdleTime(0)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", unavailable(err))
	}
	s, err := sqldb.New(writer, reader, d, opts.Store)
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return s, nil
}

// DSN returns the modernc.org/sqlite data source name Open uses for the
// writer (writer=true) or a reader connection; exported for tests and
// offline tools (backup, verify). The PRAGMAs are
// constants of this package; only the path comes from the caller, and it
// is escaped as a file: URI path.
//
//   - journal_mode=WAL: readers never block the writer or each other.
//   - synchronous=FULL: WAL is fsynced at every commit, so an
//     acknowledged write survives power loss (NORMAL may lose the last
//     transactions, which for PHI and its audit trail is not acceptable).
//   - foreign_keys=1, busy_timeout: see Options.BusyTimeout.
//   - The writer begins every transaction IMMEDIATE, taking the write
//     lock up front, so a transaction never fails to upgrade a read lock
//     half-way (SQLITE_BUSY_SNAPSHOT).
//   - Readers run with query_only=1: a bug cannot write through them.
//   - The writer runs with secure_delete=1: SQLite zeroes deleted
//     content (a shredded or re-wrapped key record, a replaced index
//     row) instead of leaving it in free space of a page or on the
//     freelist. It costs some writes of zeros, measured in ADR 0015;
//     the WAL still holds older page images until a checkpoint, which
//     the KEK epoch runs with TRUNCATE (Store.CompactKeys).
//
// Page caches per connection (SQLite's default is 2 MiB). They are
// upper bounds: memory is used only as pages are read.
//
// Issue 15 bounds a server's peak RSS under load to 512 MiB: 256 MiB for
// the writer (blind-index inserts land all over the index) and 32 MiB
// per reader (2 per CPU) keep the caches under 384 MiB on two cores; the
// operating system's page cache holds the rest of the file, so a page
// missed here costs a read system call, not a disk read.
const (
	readerCacheKiB = 32 << 10
	writerCacheKiB = 256 << 10
)

// readerMmapBytes is PRAGMA mmap_size for readers: they read the
// database file through a memory map instead of a read system call and
// a page-cache copy per page, which is what lets "audit verify" read
// entry bundles at millions of leaves a second (bench/README.md). 2 GiB
// is the most the SQLite build allows (SQLITE_MAX_MMAP_SIZE); pages
// beyond it, and the WAL, are read as before. The writer does not map:
// an I/O error on a mapped page would be a SIGBUS rather than an error,
// and only readers gain.
const readerMmapBytes = 2<<30 - 1<<16

func DSN(path string, busy time.Duration, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	// Each connection caches pages, so the upper levels of the B-trees
	// stay in memory instead of costing a read per page. The writer's
	// cache is larger: blind-index keys are random, so index inserts touch
	// pages all over the index.
	cache := readerCacheKiB
	if writer {
		cache = writerCacheKiB
	}
	q.Add("_pragma", "cache_size(-"+strconv.Itoa(cache)+")")
	if writer {
		q.Add("_pragma", "secure_delete(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "mmap_size("+strconv.Itoa(readerMmapBytes)+")")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// unmapped returns a reader DSN without its memory map (Options.MapReaders).
func unmapped(dsn string) string {
	return strings.Replace(dsn, "&_pragma="+url.QueryEscape("mmap_size("+strconv.Itoa(readerMmapBytes)+")"), "", 1)
}

// checkDSN is DSN's reader connection with a 2 MiB page cache (SQLite's
// default), for quickCheck.
func checkDSN(path string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "mmap_size("+strconv.Itoa(readerMmapBytes)+")")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// maxCheckErrors bounds the problems PRAGMA quick_check lists; the first
// names the damage well enough to refuse the file.
const maxCheckErrors = 5

// quickCheck refuses a damaged database before anything reads it:
// PRAGMA quick_check walks every page of every table and index (the
// b-tree structure, record formats, free list; not that each index
// matches its table, which integrity_check adds at several times the
// cost), about 1.4 s per GB here. A copy of a live database taken
// with cp (its WAL from another moment) fails it, where the server
// would otherwise start and answer errors for the damaged pages.
//
// It runs on a connection of its own, a reader's (mapped, read-only)
// with a small page cache, closed after: the pages it reads once do not
// stay in the writer's cache.
func quickCheck(ctx context.Context, path string, busy time.Duration) error {
	db, err := sql.Open("sqlite", checkDSN(path, busy))
	if err != nil {
		return fmt.Errorf("checking the database's integrity: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check("+strconv.Itoa(maxCheckErrors)+")")
	if err != nil {
		var e *sqlite.Error
		if errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_CORRUPT || e.Code()&0xff == sqlite3.SQLITE_NOTADB) {
			return fmt.Errorf("%w: %v; restore a backup (a copy of a live database must be made with a backup tool, not cp)", storage.ErrCorrupt, err)
		}
		return fmt.Errorf("checking the database's integrity: %w", unavailable(err))
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("checking the database's integrity: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %v; restore a backup (a copy of a live database must be made with a backup tool, not cp)", storage.ErrCorrupt, err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("%w: PRAGMA quick_check found: %s; restore a backup (a copy of a live database must be made with a backup tool, not cp)",
		storage.ErrCorrupt, strings.Join(msgs, "; "))
}
