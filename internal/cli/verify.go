package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/ledger"
)

func (e *env) verifyCmd() *cobra.Command {
	var baseline bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove the stored data against the signed audit log, and name every difference",
		Long: `verify checks the audit log (every event, hash tile and signed checkpoint, and
the checkpoints kept outside the database), then the database against it: each
write's audit event commits to what it stored (ADR 0016), so verify opens every
stored version and compares it, every current pointer and every index row with
what the log says, and names each difference with its kind: missing-resource,
missing-version, rollback, repointed, current-row, content, ciphertext, index,
forged-marker, forged-erasure, erasure, uncommitted, key, ledger-key, log,
joint-owner (the patients recorded for a resource naming several are not the
ones its owner's name commits to). It first runs the database engine's full
integrity check (SQLite: PRAGMA integrity_check).

Versions written before this ledger existed carry no commitment: they are
counted as "not committed" (not tampering). --baseline commits them once, as
found, in audited events; from then on a version without commitment is
tampering. It needs the key file (or KMS), like the server, and may run while
the server serves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(e.stderr),
				progressbar.OptionSetDescription("verifying resources"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond))
			run := a.Ledger().Verify
			if baseline {
				run = a.Ledger().Baseline
			}
			r, err := run(cmd.Context(), func() { _ = bar.Add(1) })
			_ = bar.Finish()
			fmt.Fprintln(e.stderr)
			if errors.Is(err, ledger.ErrBaselineDone) {
				return errors.New("a baseline was already committed: run verify without --baseline")
			}
			if err != nil {
				return err
			}
			printVerify(e, r, baseline)
			if !r.OK() {
				n := int64(len(r.Data.Problems)) + r.Data.More
				if r.LogDivergence != "" {
					n++
				}
				return fmt.Errorf("verification failed: %d problem(s)", n)
			}
			fmt.Fprintln(e.stdout, "OK: every stored version, current pointer and index row is what the signed audit log says")
			return nil
		},
	}
	cmd.Flags().BoolVar(&baseline, "baseline", false, "commit, once and audited, the versions written before the ledger existed")
	return cmd
}

func printVerify(e *env, r ledger.VerifyReport, baseline bool) {
	if r.LogDivergence != "" {
		fmt.Fprintf(e.stdout, "TAMPERED audit log: %s\n", r.LogDivergence)
	} else {
		fmt.Fprintf(e.stdout, "audit log: %d leaves, %d checkpoints, %d kept outside the database: verified\n", r.Log.Leaves, r.Log.Checkpoints, r.Log.Pinned)
	}
	d := r.Data
	fmt.Fprintf(e.stdout, "resources %d, versions %d: %d verified, %d delete markers, %d of erased owners; %d commitments in the log\n",
		d.Resources, d.Versions, d.Verified, d.Deleted, d.Erased, d.Commits)
	if baseline {
		fmt.Fprintf(e.stdout, "baseline: %d versions written before the ledger committed\n", d.Baselined)
	} else if d.PreLedger > 0 {
		fmt.Fprintf(e.stdout, "NOTICE %d versions not committed: written before ledger v1 (commit them once with \"phivault verify --baseline\")\n", d.PreLedger)
	}
	for _, p := range d.Problems {
		fmt.Fprintf(e.stdout, "TAMPERED %s: %s: %s\n", p.Ref, p.Kind, p.Detail)
	}
	if d.More > 0 {
		fmt.Fprintf(e.stdout, "... and %d more\n", d.More)
	}
}
