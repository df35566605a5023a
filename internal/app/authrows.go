package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
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
	checkPath := a.authRowsCheckPath()
	kept, err := readCheckValue(checkPath)
	if err != nil {
		return nil, err
	}
	var rec storage.KeyRecord
	var blessed sqldb.AuthRowsBlessed
	create := func(tx storage.Tx) error {
		var err error
		blessed = nil
		rec, err = tx.Key(ctx, keys.SystemAuthRows)
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if kept != nil {
			// This database had the key (the file says so): it was
			// deleted, and creating another would MAC every row a
			// database writer left. Fail closed.
			return fmt.Errorf("%w: the auth-rows key is missing from the database, but %s shows it had one: "+
				"rows that grant access may have been forged and would be blessed; restore the database from a backup "+
				"(or, if the database was deliberately replaced by one that never had the key, remove that file; docs/operations.md)",
				errAuthRowsIntegrity, checkPath)
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
	// Every start after the first finds the key: read it without a
	// write transaction (a fleet's processes start at once).
	rec, err = st.Key(ctx, keys.SystemAuthRows)
	if errors.Is(err, storage.ErrNotFound) {
		err = st.Update(ctx, create)
		if errors.Is(err, storage.ErrConflict) {
			// Another process created it first: load theirs.
			err = st.Update(ctx, create)
		}
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
	cv := k.CheckValue()
	switch {
	case kept != nil && !k.IsCheckValue(kept):
		return nil, fmt.Errorf("%w: the database's auth-rows key is not the one %s names: it was replaced, "+
			"and rows that grant access may have been forged; restore the database from a backup (docs/operations.md)",
			errAuthRowsIntegrity, checkPath)
	case kept == nil && checkPath != "":
		if err := writeCheckValue(checkPath, cv); err != nil {
			// The protection against a deleted key is missing until the
			// file can be written; rows are still authenticated.
			a.logger.Error("auth rows: cannot keep the key's check value beside the key file; a deletion of the key from the database would go unnoticed until it can",
				slog.String("path", checkPath), slog.String("error", err.Error()))
		}
	}
	al := &rowAlarm{app: a, st: st, seen: map[string]bool{}}
	if err := st.SetRowAuth(k, al.raise); err != nil {
		return nil, fmt.Errorf("opening the auth-rows key: %w", err)
	}
	return k, nil
}

// errAuthRowsIntegrity marks a start refused because the auth-rows key
// kept outside the database does not match the database's.
var errAuthRowsIntegrity = errors.New("integrity alarm")

// authRowsCheckFile is the name of the file beside the kept checkpoint
// (the key file's directory) that holds the auth-rows key's check value.
const authRowsCheckFile = "auth-rows-key-check"

// authRowsCheckPath is "" when no checkpoint is kept outside the
// database (audit.checkpoint_file unset: embedded uses and tests), and
// then no check value is kept either.
func (a *App) authRowsCheckPath() string {
	if a.Config.Audit.CheckpointFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(a.Config.Audit.CheckpointFile), authRowsCheckFile)
}

// readCheckValue reads the kept check value; nil if there is none.
func readCheckValue(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the auth-rows key check value: %w", err)
	}
	v, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(v) != keys.AuthMACSize {
		return nil, fmt.Errorf("%w: %s is not an auth-rows key check value (restore it, or remove it to accept the database's key; docs/operations.md)", errAuthRowsIntegrity, path)
	}
	return v, nil
}

// writeCheckValue keeps v at path: a temporary file in the same
// directory, fsynced and renamed over it.
func writeCheckValue(path string, v []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".auth-rows-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(hex.EncodeToString(v) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
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
	id = ident.Loggable(id)
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
