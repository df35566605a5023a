package tlog

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// anchors returns where the last signed checkpoint is kept outside the
// database (audit.checkpoint_file) and the witnesses' co-signed
// checkpoints (audit.witness_checkpoints, read-only).
func (l *Log) anchors() (merkle.Anchor, []merkle.Anchor) {
	var anchor merkle.Anchor
	if p := l.o.CheckpointFile; p != "" {
		anchor = merkle.FileAnchor{Path: p}
	}
	var ws []merkle.Anchor
	for _, p := range l.o.WitnessCheckpoints {
		ws = append(ws, merkle.ReadOnly{Anchor: merkle.FileAnchor{Path: p}})
	}
	return anchor, ws
}

// Kept returns the checkpoints kept outside the database that exist:
// the one the integrator keeps and the witnesses'.
func (l *Log) Kept() ([][]byte, error) {
	anchor, ws := l.anchors()
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

// Tx is the transaction of an accepted checkpoint: its audit event and
// its alert, together (ADR 0024).
type Tx interface {
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	RaiseAlert(ctx context.Context, a authz.Alert) error
}

// Unit runs fn in one transaction of the store.
type Unit interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// alertLogAccepted is the alert of an accepted audit log: the
// checkpoint kept outside the database was lost and an operator told
// the server to extend the database's log anyway.
const alertLogAccepted = "audit-log-accepted"

// Accept re-establishes the checkpoint kept outside the database
// (audit.checkpoint_file) from the database's latest signed checkpoint
// ("phivault audit accept-checkpoint", ADR 0016): the operator verified
// the log (Verify) and accepts it as the one to extend. It refuses while
// a checkpoint is kept (restore the file, or move it aside on purpose),
// and when the log does not extend the witnesses' checkpoints. It is
// audited (audit-log-accept, by actor) with a high alert, because
// accepting an emptied or rewritten log is exactly what an attacker
// would want.
func (l *Log) Accept(ctx context.Context, actor audit.Agent) (storage.Checkpoint, error) {
	cp, err := l.integ.Accept(ctx)
	if err != nil {
		return cp, err
	}
	alertID, err := authz.NewAlertID(nil)
	if err != nil {
		return cp, err
	}
	ref := fmt.Sprintf("checkpoint/%d", cp.Size)
	by := actor.User
	if by == "" {
		by = actor.Client
	}
	err = l.o.Alerts.Update(ctx, func(tx Tx) error {
		rec, err := l.o.Log.Seal(audit.Event{Time: time.Now(), Action: audit.ActionLogAccept, Outcome: audit.OutcomeSuccess,
			Agent: actor, Purpose: "HOPERAT", Entities: []string{ref},
			Policies: []string{"root=" + base64.StdEncoding.EncodeToString(cp.Root), "kept=" + l.o.CheckpointFile}})
		if err != nil {
			return err
		}
		if err := tx.RaiseAlert(ctx, authz.Alert{ID: alertID, Kind: alertLogAccepted, Priority: "high",
			UserID: by, Ref: ref, Created: time.Now().UTC()}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return cp, fmt.Errorf("the log was accepted (checkpoint of size %d kept), but recording it failed: %w", cp.Size, err)
	}
	l.integ.Wake()
	return cp, nil
}
