package app_test

import (
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/ledger"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// TestLedgerSchemeZeroStillVerifies appends, as a version before owner
// ledger keys did, a system-keyed commitment (no scheme) to a stored
// version: verify compares it as before and passes; the same commitment
// over other content is reported. An unknown scheme is a log problem.
func TestLedgerSchemeZeroStillVerifies(t *testing.T) {
	for _, drv := range []string{"sqlite", "postgres"} {
		t.Run(drv, func(t *testing.T) {
			a := openLedgerApp(t, drv)
			ctx := t.Context()
			caller := record.Caller{Agent: audit.Agent{User: "test", Client: "test"}, Purpose: "TREAT", Guard: record.Offline()}
			res, err := a.Record.Parse([]byte(`{"resourceType":"Patient","gender":"other","name":[{"family":"Older"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			st, _, err := a.Record.Create(ctx, caller, res, "")
			if err != nil {
				t.Fatal(err)
			}
			v, err := a.Store.VersionOf(ctx, "Patient", st.ID, st.Version)
			if err != nil {
				t.Fatal(err)
			}
			lrec, err := a.Store.Key(ctx, keys.SystemLedger)
			if err != nil {
				t.Fatal(err)
			}
			lk, err := a.Keys.LoadLedgerKey(lrec)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := a.Record.IndexRows("Patient", st.JSON)
			if err != nil {
				t.Fatal(err)
			}
			ref := "Patient/" + st.ID + "/_history/1"
			appendCommit := func(cm audit.Commit) {
				t.Helper()
				err := a.Store.Update(ctx, func(tx storage.Tx) error {
					rec, err := a.Log.Seal(audit.Event{Time: time.Now().UTC(), Action: audit.ActionLedgerRewrite, Outcome: audit.OutcomeSuccess,
						Agent: audit.Agent{Client: "test"}, Purpose: "HOPERAT", Ledger: []audit.Commit{cm}})
					if err != nil {
						return err
					}
					return tx.AppendAudit(ctx, rec)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			old := audit.Commit{Kind: audit.CommitRewrite, Ref: ref, Owner: string(v.Owner), Version: lk.Version(v, st.JSON), Index: lk.Index("Patient", st.ID, rows)}
			appendCommit(old)
			rep, err := a.Ledger().Verify(ctx, nil)
			if err != nil || !rep.OK() {
				t.Fatalf("verify with a system-keyed (scheme 0) commitment: %+v %v", rep.Data.Problems, err)
			}
			wrong := old
			wrong.Version = lk.Version(v, []byte(`{"resourceType":"Patient"}`))
			appendCommit(wrong)
			if rep, err = a.Ledger().Verify(ctx, nil); err != nil || !has(rep.Data.Problems, ref, ledger.KindContent) {
				t.Errorf("verify with a scheme 0 commitment to other content: %+v %v, want content on %s", rep.Data.Problems, err, ref)
			}
			odd := old
			odd.Scheme = 7
			appendCommit(odd)
			if rep, err = a.Ledger().Verify(ctx, nil); err != nil || !hasKind(rep.Data.Problems, ledger.KindLog) {
				t.Errorf("verify with a commitment of unknown scheme: %+v %v, want a log problem", rep.Data.Problems, err)
			}
		})
	}
}

func has(ps []ledger.Problem, ref string, k ledger.Kind) bool {
	for _, p := range ps {
		if p.Ref == ref && p.Kind == k {
			return true
		}
	}
	return false
}

func hasKind(ps []ledger.Problem, k ledger.Kind) bool {
	for _, p := range ps {
		if p.Kind == k {
			return true
		}
	}
	return false
}
