package tlog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage"
)

// Verify recomputes the audit log from the stored events and checks
// every checkpoint with the log's own key (see merkle.Verify).
func (l *Log) Verify(ctx context.Context, progress func(done, total int64)) (merkle.VerifyReport, error) {
	return l.VerifyWith(ctx, l.VerifierKey(), progress)
}

// VerifyWith is Verify with checkpoints checked by the verifier key vkey
// (one the auditor holds, rather than the server's own).
//
// A verification with the log's own key that ran to the end (passed, or
// found a divergence) is recorded, for the trust page and operators.
//
// The log is also checked against the checkpoints kept outside the
// database (Kept) and extra, more checkpoints (signed notes) the caller
// holds.
func (l *Log) VerifyWith(ctx context.Context, vkey string, progress func(done, total int64), extra ...[]byte) (merkle.VerifyReport, error) {
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		return merkle.VerifyReport{}, err
	}
	pinned, err := l.Kept()
	if err != nil {
		return merkle.VerifyReport{}, err
	}
	rep, err := merkle.Verify(ctx, merkle.VerifyOptions{
		Store: l.store, Opener: l.o.Log, Verifier: v, Origin: l.o.Origin, Progress: progress,
		Pinned: append(pinned, extra...),
	})
	var div *merkle.Divergence
	if vs := l.o.Verifications; vs != nil && vkey == l.VerifierKey() && (err == nil || errors.As(err, &div)) {
		rec := storage.Verification{Finished: time.Now().UTC(), Size: rep.Leaves, OK: err == nil}
		if err != nil {
			rec.Detail = err.Error()
		}
		if rerr := vs.RecordVerification(ctx, rec); rerr != nil {
			l.logger.Warn("recording the audit log verification failed", slog.String("err", rerr.Error()))
		}
	}
	return rep, err
}

// verifyEvery is how often RunVerification verifies the whole log.
const verifyEvery = 24 * time.Hour

// RunVerification verifies the whole audit log one minute after start
// and then every day until ctx ends, recording each outcome; a
// divergence is logged at error level (the operator's alarm).
func (l *Log) RunVerification(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := l.Verify(ctx, nil)
		switch {
		case err != nil && ctx.Err() == nil:
			l.logger.Error("audit log verification failed", slog.String("err", err.Error()))
		case err == nil:
			l.logger.Info("audit log verified", slog.Int64("leaves", rep.Leaves), slog.Int("checkpoints", rep.Checkpoints))
		}
		t.Reset(verifyEvery)
	}
}

// Status is the log's state as the trust page shows it.
type Status struct {
	Size           uint64
	Checkpoint     string // the latest signed checkpoint (a signed note)
	CheckpointTime time.Time
	VerifierKey    string
	// LastVerification is the end of the last successful full
	// verification; zero: never.
	LastVerification time.Time
	// Alarm says why the log is not extended ("" when it is).
	Alarm string
}

// Status returns the log's size, latest signed checkpoint, verifier key
// and last successful full verification.
func (l *Log) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := l.Alarm(); err != nil {
		st.Alarm = err.Error()
	}
	st.VerifierKey = l.VerifierKey()
	c, err := l.store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound) && st.Alarm != "":
		return st, nil // the checkpoints are gone: the alarm says why
	case err != nil:
		return st, err
	}
	st.Size, st.Checkpoint, st.CheckpointTime = uint64(c.Size), string(c.Note), c.Created
	if vs := l.o.Verifications; vs != nil {
		v, err := vs.LastVerification(ctx, true)
		switch {
		case err == nil:
			st.LastVerification = v.Finished
		case !errors.Is(err, storage.ErrNotFound):
			return st, err
		}
	}
	return st, nil
}
