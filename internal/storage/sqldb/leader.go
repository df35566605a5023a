package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"time"
)

// Leader is this process's claim on a duty that one process of a fleet
// runs at a time (the privacy monitor of the own log, ADR 0047).
//
// On PostgreSQL it is a session-level advisory lock
// (pg_try_advisory_lock) held on a connection of its own, taken from
// the writer pool for as long as the process leads. The lock lives as
// long as that database session: a leader that crashes, is killed or
// loses its network loses its session and the lock with it (at once for
// a process that dies, within the server's TCP keepalive for one that
// vanishes), and the next process that asks takes over. No lease
// length has to be tuned and no clock is compared across machines.
// Because a partitioned leader may not notice at once that its session
// ended, the duty must also fence its own writes (the monitor's cursor
// is a compare-and-set).
//
// On an engine without advisory locks (SQLite, one database file held
// by the processes of one machine) every process leads and the duty's
// fence alone keeps two from committing the same work.
//
// A Leader is safe for concurrent use; Release it when the duty stops.
type Leader struct {
	s   *Store
	key int64

	mu   sync.Mutex
	conn *sql.Conn
}

// Leader returns the claim on the duty called name (not yet taken).
func (s *Store) Leader(name string) *Leader {
	return &Leader{s: s, key: lockKey("leader/" + name)}
}

// Lead reports whether this process leads the duty, taking the lock if
// it is free. A leader checks its session is alive on every call; a
// lost session means it no longer leads (and it tries again at once,
// on a fresh connection). Errors are the database's (the caller does
// not lead meanwhile).
func (l *Leader) Lead(ctx context.Context) (bool, error) {
	if l.s.d.Name != "postgres" {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		var one int
		err := l.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		discard(l.conn) // the session is gone, or unusable: never back to the pool
		l.conn = nil
	}
	conn, err := l.s.writer.Conn(ctx)
	if err != nil {
		return false, l.s.translate("taking a leader lock", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&got); err != nil {
		discard(conn) // it may hold the lock without our knowing
		return false, l.s.translate("taking a leader lock", err)
	}
	if !got {
		_ = conn.Close()
		return false, nil
	}
	l.conn = conn
	return true, nil
}

// Release gives the duty up (another process may take it at once). It
// is safe to call when not leading, and more than once.
func (l *Leader) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if _, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
		discard(l.conn) // ending the session releases the lock
	} else {
		_ = l.conn.Close()
	}
	l.conn = nil
}

// releaseTimeout bounds the unlock at shutdown; past it the session is
// closed, which releases the lock too.
const releaseTimeout = 5 * time.Second

// discard closes c's session instead of returning it to the pool: a
// pooled session would keep a session-level lock for ever.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
