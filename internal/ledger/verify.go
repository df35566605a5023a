package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/audit/tlog"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Verifier proves the database against the signed audit log ("phivault
// verify", ADR 0016): the log first, then the stored data against what
// the log committed, then the joint owners and key records.
type Verifier struct {
	Store  storage.Store
	Keys   *keys.Keyring
	Ledger *keys.LedgerKey
	Log    *tlog.Log
	Audit  *audit.Log
	Record *record.Service
}

// VerifyReport sums up a verification: the audit log, then the stored
// data against it.
type VerifyReport struct {
	// Log is the verification of the audit log (merkle.Verify), against
	// its checkpoints and the ones kept outside the database.
	Log merkle.VerifyReport
	// LogDivergence says where the log diverges ("" when it verified):
	// the data is then compared with the log as stored, unverified.
	LogDivergence string
	// Data is the ledger check: every difference between the stored
	// resources and what the log committed.
	Data Report
}

// OK reports a verification that found nothing wrong.
func (r VerifyReport) OK() bool {
	return r.LogDivergence == "" && len(r.Data.Problems) == 0 && r.Data.More == 0
}

// Verify verifies the log (every leaf, tile and checkpoint, and the
// checkpoints kept outside the database, as "audit verify" does),
// gathering the ledger commitments of its events as it goes, then reads
// every stored version (opening each with its owner's key), current
// pointer, index row and key record, and names every difference: see
// Kind. progress is called after each resource.
//
// It reads every resource's plaintext: it needs the KEK, like the
// server.
func (v *Verifier) Verify(ctx context.Context, progress func()) (VerifyReport, error) {
	return v.verify(ctx, progress, nil)
}

// Baseline commits, once, every version stored before the ledger
// started (and the index rows of such current versions) as found, in
// events of action ledger-baseline, then marks the baseline complete:
// from then on Verify reports every version without a commitment as
// tampering. It checks everything as Verify does on the way and blesses
// nothing else; the report says what it found. ErrBaselineDone if a
// baseline was committed before.
func (v *Verifier) Baseline(ctx context.Context, progress func()) (VerifyReport, error) {
	commit := func(ctx context.Context, cs []audit.Commit) error {
		return v.Store.Update(ctx, func(tx storage.Tx) error {
			// Keyed per owner like every write's (ADR 0016, amendment).
			keyed := slices.Clone(cs)
			if err := v.Record.KeyCommits(ctx, tx, keyed); err != nil {
				return err
			}
			ev := audit.Event{Time: time.Now().UTC(), Action: audit.ActionLedgerBaseline, Outcome: audit.OutcomeSuccess,
				Agent: audit.Agent{Client: "cli"}, Purpose: "HOPERAT", Ledger: keyed}
			rec, err := v.Audit.Seal(ev)
			if err != nil {
				return err
			}
			return tx.AppendAudit(ctx, rec)
		})
	}
	return v.verify(ctx, progress, commit)
}

func (v *Verifier) verify(ctx context.Context, progress func(), baseline func(context.Context, []audit.Commit) error) (VerifyReport, error) {
	var rep VerifyReport
	sq, ok := v.Store.(storage.LedgerReader)
	if !ok {
		return rep, errors.New("verify: the store cannot be read for the ledger check")
	}
	// The engine's full integrity check first (SQLite: every page, every
	// index against its table; the open ran only quick_check): the
	// checks below read a damaged database wrongly or not at all.
	if ic, ok := v.Store.(storage.IntegrityChecker); ok {
		if err := ic.CheckIntegrity(ctx); err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
	}
	lg := NewLog()
	pinned, err := v.Log.Kept()
	if err != nil {
		return rep, err
	}
	nv, err := merkle.NewVerifier(v.Log.VerifierKey())
	if err != nil {
		return rep, err
	}
	rep.Log, err = merkle.Verify(ctx, merkle.VerifyOptions{
		Store: v.Log.Source(), Opener: v.Audit, Verifier: nv, Origin: v.Log.Origin(),
		Pinned: pinned, Leaf: lg.Leaf,
	})
	var div *merkle.Divergence
	switch {
	case errors.As(err, &div):
		// Compare with the log as stored, from its first leaf.
		rep.LogDivergence = div.Error()
		lg = NewLog()
	case err != nil:
		return rep, fmt.Errorf("verifying the audit log: %w", err)
	default:
		lg.SetSize(rep.Log.Leaves)
		if alarm := v.Log.Alarm(); errors.Is(alarm, merkle.ErrAnchorMissing) {
			// The log verifies, but nothing outside the database bounds
			// it any more: it may have been emptied or rewritten.
			rep.LogDivergence = alarm.Error()
		}
	}
	rep.Data, err = Check(ctx, Options{
		Store: v.Store, Current: sq, Keys: v.Keys, Ledger: v.Ledger, Log: lg,
		Source: v.Log.Source(), LogKey: v.Audit, Rows: v.Record.IndexRows, Progress: progress,
		Baseline: baseline,
	})
	if err != nil {
		return rep, err
	}
	if err := v.checkJointOwners(ctx, &rep.Data); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkJointOwners adds to r every joint owner whose joint_owners rows
// differ from the patients its name commits to (ADR 0019, amendment),
// and every live joint key naming a patient whose key is shredded (an
// erasure that missed it).
func (v *Verifier) checkJointOwners(ctx context.Context, r *Report) error {
	erased := map[ident.Owner]bool{}
	kek := v.Keys.KEK()
	err := v.Store.ScanKeys(ctx, func(k storage.KeyRecord) error {
		if k.Shredded && strings.HasPrefix(string(k.Owner), ident.PatientPrefix) {
			erased[k.Owner] = true
		}
		// Every live key record must open under the key file: one
		// that does not (planted, copied from another owner, damaged)
		// protects nothing, and a KEK epoch skips it with an alarm.
		if !k.Shredded && errors.Is(kek.Opens(k), keys.ErrDecrypt) {
			r.Add(Problem{Ref: ident.Loggable(string(k.Owner)), Kind: KindKey,
				Detail: "the key record opens under no key of the key file (planted, copied from another owner, or damaged)"})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: reading key records: %w", err)
	}
	return v.Record.CheckJointOwners(ctx, func(j record.JointOwnerCheck) error {
		if j.Problem != "" {
			r.Add(Problem{Ref: string(j.Owner), Kind: KindJointOwner, Detail: j.Problem})
		}
		if !j.HasKey || j.Shredded {
			return nil
		}
		for _, p := range j.Patients {
			if erased[p] {
				r.Add(Problem{Ref: string(j.Owner), Kind: KindErasure,
					Detail: "it names a patient whose record was erased, but its data key is live: the erasure missed it"})
				break
			}
		}
		return nil
	})
}
