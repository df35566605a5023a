package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/ledger"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// VerifyReport sums up "phivault verify": the audit log, then the
// stored data against it.
type VerifyReport struct {
	// Log is the verification of the audit log (merkle.Verify), against
	// its checkpoints and the ones kept outside the database.
	Log merkle.VerifyReport
	// LogDivergence says where the log diverges ("" when it verified):
	// the data is then compared with the log as stored, unverified.
	LogDivergence string
	// Data is the ledger check (package ledger): every difference
	// between the stored resources and what the log committed.
	Data ledger.Report
}

// OK reports a verification that found nothing wrong.
func (r VerifyReport) OK() bool {
	return r.LogDivergence == "" && len(r.Data.Problems) == 0 && r.Data.More == 0
}

// Verify proves the database against the signed audit log (ADR 0016).
// It verifies the log (every leaf, tile and checkpoint, and the
// checkpoints kept outside the database, as "audit verify" does),
// gathering the ledger commitments of its events as it goes, then reads
// every stored version (opening each with its owner's key), current
// pointer, index row and key record, and names every difference: see
// ledger.Kind. progress is called after each resource.
//
// It reads every resource's plaintext: it needs the KEK, like the
// server.
func (a *App) Verify(ctx context.Context, progress func()) (VerifyReport, error) {
	return a.verifyData(ctx, progress, nil)
}

// Baseline commits, once, every version stored before the ledger
// started (and the index rows of such current versions) as found, in
// events of action ledger-baseline, then marks the baseline complete:
// from then on "verify" reports every version without a commitment as
// tampering. It checks everything as Verify does on the way and blesses
// nothing else; the report says what it found. ledger.ErrBaselineDone
// if a baseline was committed before.
func (a *App) Baseline(ctx context.Context, progress func()) (VerifyReport, error) {
	commit := func(ctx context.Context, cs []audit.Commit) error {
		return a.Store.Update(ctx, func(tx storage.Tx) error {
			// Keyed per owner like every write's (ADR 0016, amendment).
			keyed := slices.Clone(cs)
			if err := a.Record.KeyCommits(ctx, tx, keyed); err != nil {
				return err
			}
			ev := audit.Event{Time: nowUTC(), Action: audit.ActionLedgerBaseline, Outcome: audit.OutcomeSuccess,
				Agent: audit.Agent{Client: "cli"}, Purpose: "HOPERAT", Ledger: keyed}
			rec, err := a.Log.Seal(ev)
			if err != nil {
				return err
			}
			return tx.AppendAudit(ctx, rec)
		})
	}
	return a.verifyData(ctx, progress, commit)
}

func (a *App) verifyData(ctx context.Context, progress func(), baseline func(context.Context, []audit.Commit) error) (VerifyReport, error) {
	var rep VerifyReport
	sq, ok := a.Store.(storage.LedgerReader)
	if !ok {
		return rep, errors.New("verify: the store cannot be read for the ledger check")
	}
	// The engine's full integrity check first (SQLite: every page, every
	// index against its table; the open ran only quick_check): the
	// checks below read a damaged database wrongly or not at all.
	if ic, ok := a.Store.(storage.IntegrityChecker); ok {
		if err := ic.CheckIntegrity(ctx); err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
	}
	lg := ledger.NewLog()
	pinned, err := a.KeptCheckpoints()
	if err != nil {
		return rep, err
	}
	v, err := merkle.NewVerifier(a.tlog.signer.VerifierKey())
	if err != nil {
		return rep, err
	}
	rep.Log, err = merkle.Verify(ctx, merkle.VerifyOptions{
		Store: a.tlog.store, Opener: a.Log, Verifier: v, Origin: a.Config.Audit.LogName,
		Pinned: pinned, Leaf: lg.Leaf,
	})
	var div *merkle.Divergence
	switch {
	case errors.As(err, &div):
		// Compare with the log as stored, from its first leaf.
		rep.LogDivergence = div.Error()
		lg = ledger.NewLog()
	case err != nil:
		return rep, fmt.Errorf("verifying the audit log: %w", err)
	default:
		lg.SetSize(rep.Log.Leaves)
		if alarm := a.LogAlarm(); errors.Is(alarm, merkle.ErrAnchorMissing) {
			// The log verifies, but nothing outside the database bounds
			// it any more: it may have been emptied or rewritten.
			rep.LogDivergence = alarm.Error()
		}
	}
	rep.Data, err = ledger.Check(ctx, ledger.Options{
		Store: a.Store, Current: sq, Keys: a.Keys, Ledger: a.ledger, Log: lg,
		Source: a.tlog.store, LogKey: a.Log, Rows: a.Record.IndexRows, Progress: progress,
		Baseline: baseline,
	})
	if err != nil {
		return rep, err
	}
	if err := a.checkJointOwners(ctx, &rep.Data); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkJointOwners adds to r every joint owner whose joint_owners rows
// differ from the patients its name commits to (ADR 0019, amendment),
// and every live joint key naming a patient whose key is shredded (an
// erasure that missed it).
func (a *App) checkJointOwners(ctx context.Context, r *ledger.Report) error {
	erased := map[ident.Owner]bool{}
	kek := a.Keys.KEK()
	err := a.Store.ScanKeys(ctx, func(k storage.KeyRecord) error {
		if k.Shredded && strings.HasPrefix(string(k.Owner), ident.PatientPrefix) {
			erased[k.Owner] = true
		}
		// Every live key record must open under the key file: one
		// that does not (planted, copied from another owner, damaged)
		// protects nothing, and a KEK epoch skips it with an alarm.
		if !k.Shredded && errors.Is(kek.Opens(k), keys.ErrDecrypt) {
			r.Add(ledger.Problem{Ref: safeID(string(k.Owner)), Kind: ledger.KindKey,
				Detail: "the key record opens under no key of the key file (planted, copied from another owner, or damaged)"})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: reading key records: %w", err)
	}
	return a.Record.CheckJointOwners(ctx, func(j record.JointOwnerCheck) error {
		if j.Problem != "" {
			r.Add(ledger.Problem{Ref: string(j.Owner), Kind: ledger.KindJointOwner, Detail: j.Problem})
		}
		if !j.HasKey || j.Shredded {
			return nil
		}
		for _, p := range j.Patients {
			if erased[p] {
				r.Add(ledger.Problem{Ref: string(j.Owner), Kind: ledger.KindErasure,
					Detail: "it names a patient whose record was erased, but its data key is live: the erasure missed it"})
				break
			}
		}
		return nil
	})
}
