package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// The ledger (ADR 0016): the audit event of every change to stored
// resources commits to what it stored; "phivault verify" checks the
// database against the verified log (verify.go).

// openLedger loads the ledger key. The first process of this version
// to open a database creates it and, in the same transaction, appends
// the ledger's start event (action ledger-start) with the key's check
// value: versions older than that event carry no commitment ("written
// before ledger v1"), and a key record replaced later is told apart
// from changed data.
func (a *App) openLedger(ctx context.Context) (*keys.LedgerKey, error) {
	var rec storage.KeyRecord
	create := func(tx storage.Tx) error {
		var err error
		rec, err = tx.Key(ctx, keys.SystemLedger)
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if rec, err = a.Keys.NewSystemKey(keys.SystemLedger, time.Now()); err != nil {
			return err
		}
		lk, err := a.Keys.LoadLedgerKey(rec)
		if err != nil {
			return err
		}
		if err := tx.PutKey(ctx, rec); err != nil {
			return err
		}
		ev := audit.Event{Time: time.Now(), Action: audit.ActionLedgerStart, Outcome: audit.OutcomeSuccess,
			Agent:  audit.Agent{User: "phivault", Client: "open"},
			Ledger: []audit.Commit{{Kind: audit.CommitStart, Version: lk.Check()}}}
		r, err := a.Log.Seal(ev)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, r)
	}
	err := a.Store.Update(ctx, create)
	if errors.Is(err, storage.ErrConflict) {
		// Another process created it first: load theirs.
		err = a.Store.Update(ctx, create)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the ledger key: %w", err)
	}
	lk, err := a.Keys.LoadLedgerKey(rec)
	if err != nil {
		return nil, fmt.Errorf("opening the ledger key (wrong key file for this database?): %w", err)
	}
	return lk, nil
}

// anchors returns where the last signed checkpoint is kept outside the
// database (audit.checkpoint_file) and the witnesses' co-signed
// checkpoints (audit.witness_checkpoints, read-only).
func (a *App) anchors() (merkle.Anchor, []merkle.Anchor) {
	var anchor merkle.Anchor
	if p := a.Config.Audit.CheckpointFile; p != "" {
		anchor = merkle.FileAnchor{Path: p}
	}
	var ws []merkle.Anchor
	for _, p := range a.Config.Audit.WitnessCheckpoints {
		ws = append(ws, merkle.ReadOnly{Anchor: merkle.FileAnchor{Path: p}})
	}
	return anchor, ws
}

// KeptCheckpoints returns the checkpoints kept outside the database
// that exist: the one the integrator keeps and the witnesses'.
func (a *App) KeptCheckpoints() ([][]byte, error) {
	anchor, ws := a.anchors()
	if anchor != nil {
		ws = append([]merkle.Anchor{anchor}, ws...)
	}
	var out [][]byte
	for _, w := range ws {
		b, err := w.Load()
		if err != nil {
			return nil, err
		}
		if b != nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// LogAlarm returns why the audit log integrator refuses to extend the
// stored log (tampered, rolled back or rewritten), or that records this
// process appended were deleted before integration (merkle.ErrVanished),
// or nil.
func (a *App) LogAlarm() error {
	if err := a.tlog.integ.Alarm(); err != nil {
		return err
	}
	return a.tlog.watch.Alarm()
}

// CheckAppendedRecords checks now (the server does every few seconds)
// that the audit records this process made durable are pending or
// integrated: an error wrapping merkle.ErrVanished names how many were
// deleted before integration (see merkle.Watch).
func (a *App) CheckAppendedRecords(ctx context.Context) error {
	return a.tlog.watch.Check(ctx)
}

// alertLogAccepted is the alert of an accepted audit log: the
// checkpoint kept outside the database was lost and an operator told
// the server to extend the database's log anyway.
const alertLogAccepted = "audit-log-accepted"

// AcceptCheckpoint re-establishes the checkpoint kept outside the
// database (audit.checkpoint_file) from the database's latest signed
// checkpoint ("phivault audit accept-checkpoint", ADR 0016): the
// operator verified the log (VerifyLog) and accepts it as the one to
// extend. It refuses while a checkpoint is kept (restore the file, or
// move it aside on purpose), and when the log does not extend the
// witnesses' checkpoints. It is audited (audit-log-accept, by actor)
// with a high alert, because accepting an emptied or rewritten log is
// exactly what an attacker would want.
func (a *App) AcceptCheckpoint(ctx context.Context, actor audit.Agent) (storage.Checkpoint, error) {
	cp, err := a.tlog.integ.Accept(ctx)
	if err != nil {
		return cp, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return cp, err
	}
	ref := fmt.Sprintf("checkpoint/%d", cp.Size)
	by := actor.User
	if by == "" {
		by = actor.Client
	}
	err = sqldb.NewUnit[alertTx](a.db).Update(ctx, func(tx alertTx) error {
		rec, err := a.Log.Seal(audit.Event{Time: time.Now(), Action: audit.ActionLogAccept, Outcome: audit.OutcomeSuccess,
			Agent: actor, Purpose: "HOPERAT", Entities: []string{ref},
			Policies: []string{"root=" + base64.StdEncoding.EncodeToString(cp.Root), "kept=" + a.Config.Audit.CheckpointFile}})
		if err != nil {
			return err
		}
		if err := tx.RaiseAlert(ctx, authz.Alert{ID: "alr_" + hex.EncodeToString(b[:]), Kind: alertLogAccepted, Priority: "high",
			UserID: by, Ref: ref, Created: time.Now().UTC()}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return cp, fmt.Errorf("the log was accepted (checkpoint of size %d kept), but recording it failed: %w", cp.Size, err)
	}
	a.tlog.integ.Wake()
	return cp, nil
}
