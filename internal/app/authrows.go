package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// Authenticated auth rows (ADR 0022): every row that grants access
// carries a MAC under the auth-rows key, which the store checks
// whenever it reads the row to authenticate or authorize.

// alarmTimeout bounds recording one integrity alarm.
const alarmTimeout = 10 * time.Second

// maxAlarmedRows bounds the rows whose alarm is recorded (audit event,
// console alert) per process, so a flood of forged rows cannot grow
// memory or goroutines; beyond it, alarms are still logged.
const maxAlarmedRows = 10000

// openAuthRows loads the auth-rows key and turns on row authentication
// in the store. The first process of this version to open a database
// creates the key and, in the same transaction, MACs every row written
// before (the upgrade), with an auth-rows-start audit event that counts
// them. Only that transaction ever MACs rows it did not write: a row
// inserted later without the key never verifies.
func (a *App) openAuthRows(ctx context.Context, st *sqldb.Store) (*keys.AuthRowKey, error) {
	var rec storage.KeyRecord
	var blessed sqldb.AuthRowsBlessed
	create := func(tx storage.Tx) error {
		var err error
		blessed = nil
		rec, err = tx.Key(ctx, keys.SystemAuthRows)
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if rec, err = a.Keys.NewSystemKey(keys.SystemAuthRows, time.Now()); err != nil {
			return err
		}
		k, err := a.Keys.LoadAuthRowKey(rec)
		if err != nil {
			return err
		}
		if err := tx.PutKey(ctx, rec); err != nil {
			return err
		}
		if blessed, err = st.BlessAuthRows(ctx, tx, k); err != nil {
			return err
		}
		var counts []string
		for table, n := range blessed {
			counts = append(counts, fmt.Sprintf("%s=%d", table, n))
		}
		slices.Sort(counts)
		ev := audit.Event{Time: time.Now(), Action: audit.ActionAuthRowsStart, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{User: "phivault", Client: "open"}, Policies: counts}
		r, err := a.Log.Seal(ev)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, r)
	}
	err := st.Update(ctx, create)
	if errors.Is(err, storage.ErrConflict) {
		// Another process created it first: load theirs.
		err = st.Update(ctx, create)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the auth-rows key: %w", err)
	}
	if blessed != nil {
		attrs := []any{}
		for table, n := range blessed {
			attrs = append(attrs, slog.Int(table, n))
		}
		a.logger.Warn("auth rows: first start with authenticated rows; existing tokens and accounts were MACed as they are: review them (docs/operations.md)", attrs...)
	}
	k, err := a.Keys.LoadAuthRowKey(rec)
	if err != nil {
		return nil, fmt.Errorf("opening the auth-rows key (wrong key file for this database?): %w", err)
	}
	al := &rowAlarm{app: a, st: st, seen: map[string]bool{}}
	if err := st.SetRowAuth(k, al.raise); err != nil {
		return nil, fmt.Errorf("opening the auth-rows key: %w", err)
	}
	return k, nil
}

// rowAlarm raises the integrity alarm of a refused auth row: an error
// log line every time, and once per row an audit event and a
// high-priority alert in the security administrators' console.
type rowAlarm struct {
	app *App
	st  *sqldb.Store

	mu   sync.Mutex
	seen map[string]bool
}

// raise is called by the store while it reads (maybe inside a
// transaction), so the durable part runs on its own goroutine.
func (r *rowAlarm) raise(table, id string) {
	id = safeID(id)
	r.app.logger.Error("integrity alarm: a row that grants access failed its MAC and was refused (ADR 0022); someone wrote to the database without the key",
		slog.String("table", table), slog.String("row", id))
	ref := table + "/" + id
	r.mu.Lock()
	if r.seen[ref] || len(r.seen) >= maxAlarmedRows {
		// Recorded already, or a flood of forged rows: the log line
		// above is all, so memory and goroutines stay bounded.
		r.mu.Unlock()
		return
	}
	r.seen[ref] = true
	r.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), alarmTimeout)
		defer cancel()
		now := time.Now()
		rec, err := r.app.Log.Seal(audit.Event{Time: now, Action: audit.ActionAuthRowRefused, Outcome: audit.OutcomeDenied,
			Agent: audit.Agent{User: "phivault", Client: "serve"}, Entities: []string{ref}})
		if err == nil {
			err = r.st.RaiseAuthRowAlert(ctx, table, id, now, rec)
		}
		if err != nil {
			r.app.logger.Error("integrity alarm could not be recorded", slog.String("table", table), slog.String("row", id), slog.String("error", err.Error()))
		}
	}()
}

// safeID bounds a row id read from a tampered row before it is logged:
// valid UTF-8, no control characters, at most 128 bytes.
func safeID(id string) string {
	if len(id) > 128 {
		id = id[:128]
	}
	id = strings.ToValidUTF8(id, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, id)
}
