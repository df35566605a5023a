package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTimeout bounds each administrative statement.
const pgTimeout = 30 * time.Second

// pgDatabase is a database the suite created on a PostgreSQL server.
type pgDatabase struct {
	admin string // the admin URL given with -postgres
	name  string // phivault_bench_<hex>
	url   string // the admin URL with the database's name as its path
}

// createDatabase creates an empty database phivault_bench_<random hex>.
// The URLs may hold a password: they are never printed or put in errors
// (pgx's connection errors name the host, user and database, not the
// password).
func createDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-postgres must be a postgres:// URL")
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := "phivault_bench_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL (-postgres): %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The name is generated here (hex only), so quoting it is enough.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &pgDatabase{admin: admin, name: name, url: u.String()}, nil
}

// drop drops the database, closing what still uses it.
func (d *pgDatabase) drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("dropping database %s: %w", d.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", d.name, err)
	}
	return nil
}
