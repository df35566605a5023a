package tlog

import (
	"context"

	"github.com/phivault/phivault/internal/audit"

	"github.com/phivault/phivault/internal/storage"
)

// Appender returns an appender over st that wakes the integrator after
// each durable batch, so a checkpoint follows the appends within MinGap
// rather than Interval, and has the watch follow the records until they
// are integrated.
func (l *Log) Appender(st audit.Appender) audit.Appender {
	return wakingAppender{st: st, log: l}
}

type wakingAppender struct {
	st  audit.Appender
	log *Log
}

func (w wakingAppender) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	hs := leafHashes(recs)
	w.log.watch.Expect(hs...)
	err := w.st.AppendAudit(ctx, recs...)
	w.log.watch.Settle(err == nil, hs...)
	if err == nil {
		w.log.integ.Wake()
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

// Store returns st whose write transactions' audit records are followed
// by the watch until integrated (from before the append; settled when
// Update returns).
func (l *Log) Store(st storage.Store) storage.Store {
	return watchedStore{Store: st, log: l}
}

type watchedStore struct {
	storage.Store
	log *Log
}

func (s watchedStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	w := s.log.watch
	var all, last [][]byte
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		// A rerun after a rollback appends its records again: only the
		// last run's can have committed.
		w.Settle(false, last...)
		last = last[:0]
		return fn(watchedTx{Tx: tx, add: func(hs [][]byte) {
			w.Expect(hs...)
			last = append(last, hs...)
			all = append(all, hs...)
		}})
	})
	if err != nil {
		w.Settle(false, all...)
		return err
	}
	w.Settle(true, last...)
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
