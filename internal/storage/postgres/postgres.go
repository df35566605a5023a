package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
)

// Options configures Open. The zero value means the defaults.
type Options struct {
	// MaxConns is the size of the connection pool. Default
	// 4 × GOMAXPROCS; must not be negative.
	MaxConns int

	// ConnMaxLifetime bounds the age of a pooled connection. Default
	// DefaultConnMaxLifetime; must not be negative.
	ConnMaxLifetime time.Duration

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
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("postgres: open: invalid connection URL")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", unavailable(err))
	}
	d := Dialect()
	if err := sqldb.Migrate(ctx, db, d); err != nil {
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
