package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// pgPrefix is the archive directory of the tables: pg/NNNN-table/CHUNK,
// NNNN the table's place in the restore order.
const pgPrefix = "pg/"

// pgMigrations is the first entry of a PostgreSQL archive: the applied
// migration versions, which a restore needs before the first table.
const pgMigrations = "pg/migrations.json"

// PostgresSource snapshots phivault's tables in a PostgreSQL database
// while servers use it: one REPEATABLE READ READ ONLY transaction sees
// one consistent state of every table, and COPY ... TO STDOUT (binary)
// streams each table from it, parents before the tables whose foreign
// keys name them. It is a logical copy of phivault's own schema, not of
// the cluster: the operator's pg_basebackup and WAL archive go on as
// before (docs/backup-and-restore.md).
type PostgresSource struct {
	URL string
}

// Engine is EnginePostgres.
func (s PostgresSource) Engine() string { return EnginePostgres }

func (s PostgresSource) snapshot(ctx context.Context, a *archiveWriter, progress Progress) (Manifest, error) {
	conn, err := connect(ctx, s.URL)
	if err != nil {
		return Manifest{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: beginning the snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	m, err := facts(ctx, func(ctx context.Context, q string, dest ...any) error {
		return tx.QueryRow(ctx, q).Scan(dest...)
	}, func(err error) bool { return errors.Is(err, pgx.ErrNoRows) })
	if err != nil {
		return Manifest{}, err
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: reading the migrations: %w", err)
	}
	m.Migrations, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: reading the migrations: %w", err)
	}
	mb, err := json.Marshal(m.Migrations)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	if err := a.add(pgMigrations, int64(len(mb)), bytesReader(mb)); err != nil {
		return Manifest{}, err
	}
	tables, err := tableOrder(ctx, tx)
	if err != nil {
		return Manifest{}, err
	}
	for i, t := range tables {
		progress.phase("copy "+t, int64(i), int64(len(tables)))
		c := &chunker{a: a, prefix: fmt.Sprintf("%s%04d-%s", pgPrefix, i+1, t)}
		if _, err := conn.PgConn().CopyTo(ctx, c, `COPY `+pgx.Identifier{t}.Sanitize()+` TO STDOUT (FORMAT binary)`); err != nil {
			return Manifest{}, fmt.Errorf("backup: copying table %s: %w", t, err)
		}
		if err := c.close(); err != nil {
			return Manifest{}, err
		}
	}
	progress.phase("copy", int64(len(tables)), int64(len(tables)))
	if err := tx.Commit(ctx); err != nil {
		return Manifest{}, fmt.Errorf("backup: ending the snapshot: %w", err)
	}
	m.Engine = EnginePostgres
	return m, nil
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("backup: invalid PostgreSQL connection URL")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("backup: connecting to PostgreSQL: %w", err)
	}
	return conn, nil
}

// tableOrder returns the tables of the current schema, every table after
// the tables its foreign keys reference (then by name).
func tableOrder(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	if err != nil {
		return nil, fmt.Errorf("backup: listing tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("backup: listing tables: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT c.relname, p.relname FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE k.contype = 'f' AND n.nspname = current_schema() AND c.oid <> p.oid`)
	if err != nil {
		return nil, fmt.Errorf("backup: reading foreign keys: %w", err)
	}
	deps := make(map[string][]string)
	var child, parent string
	_, err = pgx.ForEachRow(rows, []any{&child, &parent}, func() error {
		deps[child] = append(deps[child], parent)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: reading foreign keys: %w", err)
	}
	var out []string
	done := make(map[string]bool)
	var visit func(t string, depth int) error
	visit = func(t string, depth int) error {
		if done[t] {
			return nil
		}
		if depth > len(tables) {
			return fmt.Errorf("backup: foreign keys form a cycle through %s", t)
		}
		for _, p := range deps[t] {
			if err := visit(p, depth+1); err != nil {
				return err
			}
		}
		done[t] = true
		out = append(out, t)
		return nil
	}
	for _, t := range tables {
		if err := visit(t, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrNotEmpty means a restore's target (directory or database) already
// holds something: restore never overwrites.
var ErrNotEmpty = errors.New("backup: the restore target is not empty")

// pgRestore restores a PostgreSQL backup's tables into an empty database
// in one transaction, committed only once the whole archive checked out.
type pgRestore struct {
	conn *pgx.Conn
	tx   pgx.Tx
	// the table being copied: its COPY runs in a goroutine fed by pw.
	table string
	pw    *io.PipeWriter
	done  chan error
	// tables are the restored tables, their triggers off until commit.
	tables []string
}

func openPGRestore(ctx context.Context, url string) (*pgRestore, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("backup: inspecting the target database: %w", err)
	}
	if n > 0 {
		conn.Close(ctx)
		return nil, fmt.Errorf("%w: the target database has %d tables in its schema (restore needs an empty database)", ErrNotEmpty, n)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("backup: beginning the restore: %w", err)
	}
	return &pgRestore{conn: conn, tx: tx}, nil
}

// schema creates the tables from the migration files whose versions the
// backup's database had applied (pgMigrations), then empties what the
// migrations inserted so that COPY brings the backup's rows only.
func (r *pgRestore) schema(ctx context.Context, versions []int) error {
	ms, err := sqldb.Migrations(postgres.Dialect())
	if err != nil {
		return err
	}
	if _, err := r.tx.Exec(ctx, `CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("backup: creating schema_migrations: %w", err)
	}
	known := make(map[int]bool)
	for _, m := range ms {
		known[m.Version] = true
		if !slices.Contains(versions, m.Version) {
			continue
		}
		if _, err := r.tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("backup: applying migration %s: %w", m.Name, err)
		}
	}
	for _, v := range versions {
		if !known[v] {
			return fmt.Errorf("backup: the backup's schema has migration %d, unknown to this binary (restore with a newer phivault)", v)
		}
	}
	rows, err := r.tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		return fmt.Errorf("backup: listing tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("backup: listing tables: %w", err)
	}
	ids := make([]string, len(tables))
	for i, t := range tables {
		ids[i] = pgx.Identifier{t}.Sanitize()
	}
	if _, err := r.tx.Exec(ctx, `TRUNCATE `+strings.Join(ids, ", ")); err != nil {
		return fmt.Errorf("backup: emptying the new tables: %w", err)
	}
	// The schema's triggers (the change feeds) would add rows of their
	// own for every row copied in: the copy is of rows those triggers
	// already wrote. They are off until commit.
	for _, id := range ids {
		if _, err := r.tx.Exec(ctx, `ALTER TABLE `+id+` DISABLE TRIGGER USER`); err != nil {
			return fmt.Errorf("backup: pausing the triggers of %s: %w", id, err)
		}
	}
	r.tables = ids
	return nil
}

// chunk feeds one chunk of entry pg/NNNN-table/CHUNK.
func (r *pgRestore) chunk(ctx context.Context, name string, rd io.Reader) error {
	dir, _, ok := strings.Cut(strings.TrimPrefix(name, pgPrefix), "/")
	_, table, ok2 := strings.Cut(dir, "-")
	if !ok || !ok2 || table == "" {
		return fmt.Errorf("%w: entry %q", ErrCorrupt, name)
	}
	if table != r.table {
		if err := r.endTable(); err != nil {
			return err
		}
		pr, pw := io.Pipe()
		r.table, r.pw, r.done = table, pw, make(chan error, 1)
		sql := `COPY ` + pgx.Identifier{table}.Sanitize() + ` FROM STDIN (FORMAT binary)`
		go func() {
			_, err := r.conn.PgConn().CopyFrom(ctx, pr, sql)
			pr.CloseWithError(err)
			r.done <- err
		}()
	}
	if _, err := io.Copy(r.pw, rd); err != nil {
		err = errors.Join(err, r.endTable())
		return fmt.Errorf("backup: restoring table %s: %w", table, err)
	}
	return nil
}

// endTable ends the COPY of the current table.
func (r *pgRestore) endTable() error {
	if r.pw == nil {
		return nil
	}
	r.pw.Close()
	err := <-r.done
	t := r.table
	r.pw, r.table = nil, ""
	if err != nil {
		return fmt.Errorf("backup: restoring table %s: %w", t, err)
	}
	return nil
}

// commit ends the last COPY, sets every sequence past the largest value
// restored, and commits.
func (r *pgRestore) commit(ctx context.Context) error {
	if err := r.endTable(); err != nil {
		return err
	}
	rows, err := r.tx.Query(ctx, `SELECT s.relname, t.relname, a.attname FROM pg_class s
		JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
		JOIN pg_class t ON t.oid = d.refobjid
		JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
		JOIN pg_namespace n ON n.oid = s.relnamespace
		WHERE s.relkind = 'S' AND n.nspname = current_schema() AND d.deptype IN ('a', 'i')`)
	if err != nil {
		return fmt.Errorf("backup: listing sequences: %w", err)
	}
	type seq struct{ seq, table, col string }
	var seqs []seq
	var s seq
	if _, err := pgx.ForEachRow(rows, []any{&s.seq, &s.table, &s.col}, func() error { seqs = append(seqs, s); return nil }); err != nil {
		return fmt.Errorf("backup: listing sequences: %w", err)
	}
	for _, id := range r.tables {
		if _, err := r.tx.Exec(ctx, `ALTER TABLE `+id+` ENABLE TRIGGER USER`); err != nil {
			return fmt.Errorf("backup: restoring the triggers of %s: %w", id, err)
		}
	}
	for _, s := range seqs {
		q := `SELECT setval($1::regclass, COALESCE((SELECT MAX(` + pgx.Identifier{s.col}.Sanitize() + `) FROM ` +
			pgx.Identifier{s.table}.Sanitize() + `), 0) + 1, false)`
		if _, err := r.tx.Exec(ctx, q, pgx.Identifier{s.seq}.Sanitize()); err != nil {
			return fmt.Errorf("backup: setting sequence %s: %w", s.seq, err)
		}
	}
	if err := r.tx.Commit(ctx); err != nil {
		return fmt.Errorf("backup: committing the restore: %w", err)
	}
	return nil
}

// close rolls back what was not committed and closes the connection.
func (r *pgRestore) close(ctx context.Context) {
	if r.pw != nil {
		r.pw.CloseWithError(errors.New("backup: restore stopped"))
		<-r.done
	}
	_ = r.tx.Rollback(ctx)
	_ = r.conn.Close(ctx)
}
