package cli

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/backup"
)

func (e *env) keysEscrowCmd() *cobra.Command {
	var recipients, recipientFiles []string
	var out string
	cmd := &cobra.Command{
		Use:   "escrow",
		Short: "Write the key file (every KEK key) encrypted to age recipients, for restores; audited",
		Long: `escrow writes a copy of the key file, every KEK key id in it, encrypted with
age to the recipients (their identities kept offline, apart from the backups),
to --out (created, mode 0600, never overwritten). It is recorded in the audit
log (key-escrow). "backup restore --escrow FILE --identity ID" and "keys
recover" rebuild the key file from it.

After every KEK epoch ("keys shred-epoch", run by the server after erasures)
the old KEK keys are destroyed so that erased patients stay erased: write a new
escrow then and DESTROY the older ones, or the erased patients come back from
old backups with them. Backups older than the epoch then no longer restore:
that is intended (docs/backup-and-restore.md).

Splitting into Shamir k-of-n shares is not offered (no maintained small
library; phivault writes no secret-sharing code of its own): give several
recipients for 1-of-n.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("%w: --out FILE is required", errUsage)
			}
			rs, err := backup.ParseRecipients(recipients, recipientFiles)
			if err != nil {
				return err
			}
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			var buf bytes.Buffer
			ids, err := a.EscrowKeyFile(cmd.Context(), &buf, rs, cliAgent())
			if err == nil {
				_, err = f.Write(buf.Bytes())
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintf(e.stdout, "escrowed KEK key(s) %s to %d recipient(s) in %s (recorded in the audit log)\n", idList(ids), len(rs), out)
			fmt.Fprintln(e.stdout, "after the next KEK epoch (erasures), escrow again and destroy this file")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "age recipient (age1...; repeatable)")
	cmd.Flags().StringArrayVar(&recipientFiles, "recipients-file", nil, "file of age recipients, one a line (repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "the escrow file to write")
	return cmd
}

func (e *env) keysRecoverCmd() *cobra.Command {
	var escrows, identities []string
	var out string
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild a key file from an escrow (--escrow FILE --identity ID --out KEYFILE)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || len(escrows) == 0 {
				return fmt.Errorf("%w: --escrow and --out are required", errUsage)
			}
			ids, err := backup.ParseIdentityFiles(identities...)
			if err != nil {
				return err
			}
			kek, err := app.RecoverKeyFile(cmd.Context(), escrows, ids, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s (mode 0600) with KEK key(s) %s\n", out, idList(kek))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&escrows, "escrow", nil, "escrow file (repeatable: the first one an identity opens)")
	cmd.Flags().StringArrayVar(&identities, "identity", nil, "age identity file (repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "the key file to create")
	return cmd
}
