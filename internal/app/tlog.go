package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/webui"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// transparency is the audit log's Merkle tree side (ADR 0010): the
// signer, the integrator and its goroutine, and the reader behind /log.
type transparency struct {
	signer *keys.LogSigner
	store  storage.LogStore
	integ  *merkle.Integrator
	watch  *merkle.Watch // this process's records until they are integrated
	reader *merkle.Reader
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// finalIntegrationTimeout bounds the last integration Close runs, so a
// stuck database cannot hang shutdown.
const finalIntegrationTimeout = 30 * time.Second

// openTransparency loads the log signing key (created with the other
// system keys) and starts the integrator goroutine, which App.Close
// stops after draining the batcher.
func (a *App) openTransparency(ctx context.Context) error {
	sq := a.db
	rec, err := a.Store.Key(ctx, keys.SystemLogSigner)
	if err != nil {
		return fmt.Errorf("opening the audit log signing key: %w", err)
	}
	signer, err := a.Keys.LoadLogSigner(rec, a.Config.Audit.LogName)
	if err != nil {
		return fmt.Errorf("opening the audit log signing key (audit.log_name): %w", err)
	}
	t := &transparency{signer: signer, store: sq.TLog()}
	v, err := merkle.NewVerifier(signer.VerifierKey())
	if err != nil {
		return fmt.Errorf("opening the audit log signing key: %w", err)
	}
	anchor, witnesses := a.anchors()
	t.integ, err = merkle.NewIntegrator(merkle.IntegratorOptions{
		Store: t.store, Signer: signer, Verifier: v, Origin: a.Config.Audit.LogName, Opener: a.Log, Logger: a.logger,
		Anchor: anchor, Witnesses: witnesses,
	})
	if err != nil {
		return err
	}
	t.reader = merkle.NewReader(t.store, a.Log)
	// Integrate now, so /log/checkpoint answers from the first request
	// (a new log gets the empty tree's checkpoint). A failure is logged,
	// not fatal: a tampered log must not keep the server down; "phivault
	// audit verify" names the damage.
	if _, err := t.integ.IntegrateAll(ctx); err != nil && a.logger != nil {
		a.logger.Error("audit log integration failed at start", slog.String("err", err.Error()))
	}
	if t.watch, err = merkle.NewWatch(ctx, t.store, a.Log, a.logger, 0); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		_ = t.integ.Run(rctx)
	}()
	go func() {
		defer t.wg.Done()
		_ = t.watch.Run(rctx)
	}()
	a.tlog = t
	return nil
}

// close stops the integrator goroutine and integrates what is left, so
// every event recorded by this process is in a signed checkpoint.
func (t *transparency) close() error {
	t.cancel()
	t.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), finalIntegrationTimeout)
	defer cancel()
	_, err := t.integ.IntegrateAll(ctx)
	return err
}

// LogVerifierKey returns the audit log's public note verifier key.
func (a *App) LogVerifierKey() string { return a.tlog.signer.VerifierKey() }

// LogReader serves the published log (checkpoints, tiles, proofs).
func (a *App) LogReader() *merkle.Reader { return a.tlog.reader }

// IntegrateLog integrates every pending audit record now and returns the
// tree size.
func (a *App) IntegrateLog(ctx context.Context) (int64, error) {
	return a.tlog.integ.IntegrateAll(ctx)
}

// VerifyLog recomputes the audit log from the stored events and checks
// every checkpoint with the log's own key (see merkle.Verify).
func (a *App) VerifyLog(ctx context.Context, progress func(done, total int64)) (merkle.VerifyReport, error) {
	return a.VerifyLogWith(ctx, a.tlog.signer.VerifierKey(), progress)
}

// VerifyLogWith is VerifyLog with checkpoints checked by the verifier
// key vkey (one the auditor holds, rather than the server's own).
//
// A verification with the log's own key that ran to the end (passed, or
// found a divergence) is recorded, for the trust page and operators.
//
// The log is also checked against the checkpoints kept outside the
// database (KeptCheckpoints) and extra, more checkpoints (signed notes)
// the caller holds.
func (a *App) VerifyLogWith(ctx context.Context, vkey string, progress func(done, total int64), extra ...[]byte) (merkle.VerifyReport, error) {
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		return merkle.VerifyReport{}, err
	}
	pinned, err := a.KeptCheckpoints()
	if err != nil {
		return merkle.VerifyReport{}, err
	}
	rep, err := merkle.Verify(ctx, merkle.VerifyOptions{
		Store: a.tlog.store, Opener: a.Log, Verifier: v, Origin: a.Config.Audit.LogName, Progress: progress,
		Pinned: append(pinned, extra...),
	})
	var div *merkle.Divergence
	if sq := a.db; vkey == a.tlog.signer.VerifierKey() && (err == nil || errors.As(err, &div)) {
		rec := sqldb.Verification{Finished: time.Now().UTC(), Size: rep.Leaves, OK: err == nil}
		if err != nil {
			rec.Detail = err.Error()
		}
		if rerr := sq.RecordVerification(ctx, rec); rerr != nil && a.logger != nil {
			a.logger.Warn("recording the audit log verification failed", slog.String("err", rerr.Error()))
		}
	}
	return rep, err
}

// verifyEvery is how often "serve" verifies the whole audit log.
const verifyEvery = 24 * time.Hour

// RunLogVerification verifies the whole audit log one minute after
// start and then every day until ctx ends, recording each outcome; a
// divergence is logged at error level (the operator's alarm).
func (a *App) RunLogVerification(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := a.VerifyLog(ctx, nil)
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.Error("audit log verification failed", slog.String("err", err.Error()))
		case err == nil:
			a.logger.Info("audit log verified", slog.Int64("leaves", rep.Leaves), slog.Int("checkpoints", rep.Checkpoints))
		}
		t.Reset(verifyEvery)
	}
}

// TrustStatus implements webui.AuditLog: the log's size, latest signed
// checkpoint, verifier key and last successful full verification.
func (a *App) TrustStatus(ctx context.Context) (webui.AuditLogStatus, error) {
	var st webui.AuditLogStatus
	if err := a.LogAlarm(); err != nil {
		st.Alarm = err.Error()
	}
	st.VerifierKey = a.tlog.signer.VerifierKey()
	c, err := a.tlog.store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound) && st.Alarm != "":
		return st, nil // the checkpoints are gone: the alarm says why
	case err != nil:
		return st, err
	}
	st.Size, st.Checkpoint, st.CheckpointTime = uint64(c.Size), string(c.Note), c.Created
	if sq := a.db; sq != nil {
		v, err := sq.LastVerification(ctx, true)
		switch {
		case err == nil:
			st.LastVerification = v.Finished
		case !errors.Is(err, storage.ErrNotFound):
			return st, err
		}
	}
	return st, nil
}

// wakingAppender wakes the integrator after each durable batch, so a
// checkpoint follows the appends within MinGap rather than Interval,
// and has the watch follow the records until they are integrated.
type wakingAppender struct {
	st    storage.Store
	wake  func()
	watch *merkle.Watch
}

func (w wakingAppender) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	hs := leafHashes(recs)
	w.watch.Expect(hs...)
	err := w.st.AppendAudit(ctx, recs...)
	w.watch.Settle(err == nil, hs...)
	if err == nil && w.wake != nil {
		w.wake()
	}
	return err
}

func leafHashes(recs []storage.AuditRecord) [][]byte {
	hs := make([][]byte, len(recs))
	for i, r := range recs {
		hs[i] = r.LeafHash
	}
	return hs
}

// watchedStore is the store of the record service: the audit records its
// write transactions append are followed by the watch until integrated
// (from before the append; settled when Update returns).
type watchedStore struct {
	storage.Store
	watch *merkle.Watch
}

func (s watchedStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	var all, last [][]byte
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		// A rerun after a rollback appends its records again: only the
		// last run's can have committed.
		s.watch.Settle(false, last...)
		last = last[:0]
		return fn(watchedTx{Tx: tx, add: func(hs [][]byte) {
			s.watch.Expect(hs...)
			last = append(last, hs...)
			all = append(all, hs...)
		}})
	})
	if err != nil {
		s.watch.Settle(false, all...)
		return err
	}
	s.watch.Settle(true, last...)
	return nil
}

type watchedTx struct {
	storage.Tx
	add func([][]byte)
}

func (t watchedTx) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	t.add(leafHashes(recs))
	return t.Tx.AppendAudit(ctx, recs...)
}

// AuditEvents opens every stored audit event, integrated and pending
// (audit.Log.Events): for tests and tools, it reads the whole log.
func (a *App) AuditEvents(ctx context.Context) ([]audit.Event, error) {
	return a.Log.Events(ctx, a.tlog.store)
}
