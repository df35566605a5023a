package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// OpenKey loads the ledger key. The first process of this version to
// open a database creates it and, in the same transaction, appends the
// ledger's start event (action ledger-start) with the key's check value:
// versions older than that event carry no commitment ("written before
// ledger v1"), and a key record replaced later is told apart from
// changed data.
func OpenKey(ctx context.Context, st storage.Store, kr *keys.Keyring, log *audit.Log) (*keys.LedgerKey, error) {
	var rec storage.KeyRecord
	create := func(tx storage.Tx) error {
		var err error
		rec, err = tx.Key(ctx, keys.SystemLedger)
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if rec, err = kr.NewSystemKey(keys.SystemLedger, time.Now()); err != nil {
			return err
		}
		lk, err := kr.LoadLedgerKey(rec)
		if err != nil {
			return err
		}
		if err := tx.PutKey(ctx, rec); err != nil {
			return err
		}
		ev := audit.Event{Time: time.Now(), Action: audit.ActionLedgerStart, Outcome: audit.OutcomeSuccess,
			Agent:  audit.Agent{User: "phivault", Client: "open"},
			Ledger: []audit.Commit{{Kind: audit.CommitStart, Version: lk.Check()}}}
		r, err := log.Seal(ev)
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
		return nil, fmt.Errorf("opening the ledger key: %w", err)
	}
	lk, err := kr.LoadLedgerKey(rec)
	if err != nil {
		return nil, fmt.Errorf("opening the ledger key (wrong key file for this database?): %w", err)
	}
	return lk, nil
}
