package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// Defaults for Options.
const (
	// DefaultConnMaxLifetime recycles connections so a fleet rebalances
	// after a failover or a proxy restart.
	DefaultConnMaxLifetime = 30 * time.Minute

	// DefaultStatementTimeout: no statement of phivault runs longer
	// (searches are bounded, scans batched); see config.DefaultStatementTimeout.
	DefaultStatementTimeout = 30 * time.Second
	// DefaultLockTimeout: a lock wait longer than this means a stuck or
	// hostile lock holder; see config.DefaultLockTimeout.
	DefaultLockTimeout = 5 * time.Second
	// idleInTransactionTimeout ends a session left idle inside a
	// transaction (a crashed or hung client of the database) so its
	// locks are released: phivault never pauses inside a transaction.
	idleInTransactionTimeout = time.Minute
)

// Options configures Open. The zero value means the defaults.
type Options struct {
	// MaxConns is the size of the connection pool. Default
	// 4 × GOMAXPROCS; must not be negative.
	MaxConns int

	// ConnMaxLifetime bounds the age of a pooled connection. Default
	// DefaultConnMaxLifetime; must not be negative.
	ConnMaxLifetime time.Duration

	// StatementTimeout and LockTimeout are the session's
	// statement_timeout and lock_timeout on every pooled connection
	// (migrations excepted), unless the URL sets them (a parameter such as
	// ?lock_timeout=2s).
	// A statement cancelled by either fails with storage.ErrUnavailable
	// (not retried), answered 503 with Retry-After. Defaults
	// DefaultStatementTimeout and DefaultLockTimeout; must not be negative.
	StatementTimeout time.Duration
	LockTimeout      time.Duration

	// Store tunes the shared implementation (clock, retry bound).
	Store sqldb.Options
}

// Open connects to the PostgreSQL database at url (a libpq URL or DSN;
// credentials belong in it or in the PG* environment, never in logs),
// migrates it to head and returns the store. Several processes may open
// the same database. The caller must Close it.
//
// It uses pgx through database/sql (pgx/v5/stdlib) rather than pgxpool
// so that both engines share one implementation in sqldb; pgx still
// caches prepared statements per connection.
func Open(ctx context.Context, url string, opts Options) (*sqldb.Store, error) {
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("postgres: open: Options.MaxConns %d is negative", opts.MaxConns)
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 4 * runtime.GOMAXPROCS(0)
	}
	if opts.ConnMaxLifetime < 0 {
		return nil, fmt.Errorf("postgres: open: Options.ConnMaxLifetime %v is negative", opts.ConnMaxLifetime)
	}
	if opts.ConnMaxLifetime == 0 {
		opts.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if opts.StatementTimeout < 0 || opts.LockTimeout < 0 {
		return nil, errors.New("postgres: open: Options.StatementTimeout and LockTimeout must not be negative")
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = DefaultStatementTimeout
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("postgres: open: invalid connection URL")
	}
	d := Dialect()
	// Migrations run on a connection of their own without the timeouts:
	// building an index on a large table may rightly take minutes.
	mig := stdlib.OpenDB(*cfg.Copy())
	mig.SetMaxOpenConns(1)
	if err := mig.PingContext(ctx); err != nil {
		mig.Close()
		return nil, fmt.Errorf("postgres: open: %w", unavailable(err))
	}
	err = sqldb.Migrate(ctx, mig, d)
	mig.Close()
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	for name, v := range map[string]time.Duration{
		"statement_timeout":                   opts.StatementTimeout,
		"lock_timeout":                        opts.LockTimeout,
		"idle_in_transaction_session_timeout": idleInTransactionTimeout,
	} {
		if _, set := cfg.RuntimeParams[name]; !set {
			cfg.RuntimeParams[name] = strconv.FormatInt(v.Milliseconds(), 10)
		}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", unavailable(err))
	}
	if err := checksumCheck(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s, err := sqldb.New(db, db, d, opts.Store)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// checksumCheck refuses a database in which PostgreSQL has detected
// damaged pages: with data checksums on (initdb --data-checksums, the
// default from PostgreSQL 18), every page read is checked and each
// failure counted in pg_stat_database.checksum_failures. A count above
// zero means pages of this database were found damaged (a copy of a
// live data directory, a failing disk): serving from it would answer
// errors, or worse. Structure is not walked at every start, unlike
// SQLite's quick_check: on a fleet's database that is the job of
// pg_amcheck, run by the operator (docs/operations.md). With checksums
// off the count is NULL and nothing is refused.
func checksumCheck(ctx context.Context, db *sql.DB) error {
	var failures sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()`).Scan(&failures)
	if err != nil {
		return fmt.Errorf("checking the database's integrity: %w", unavailable(err))
	}
	if failures.Valid && failures.Int64 > 0 {
		return fmt.Errorf("%w: PostgreSQL counted %d data checksum failures in this database (pg_stat_database.checksum_failures): check it with pg_amcheck and restore a backup, then reset the count with pg_stat_reset()",
			storage.ErrCorrupt, failures.Int64)
	}
	return nil
}
