package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys/lifecycle"
)

func (e *env) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate encryption keys"}
	cmd.AddCommand(e.keysStatusCmd(), e.keysRotateCmd(), e.keysShredEpochCmd(), e.keysEscrowCmd(), e.keysRecoverCmd())
	return cmd
}

// openApp opens the data directory's instance for one command, holding
// the directory shared (ADR 0037): these commands may run beside a
// server, not beside a direct import.
func (e *env) openApp(cmd *cobra.Command) (*app.App, error) {
	c, err := e.loadConfig(config.Overrides{})
	if err != nil {
		return nil, err
	}
	// These commands scan (verify, audit verify, reindex) rather than
	// serve random reads.
	return app.Open(cmd.Context(), c, e.logger(), app.HoldingDataDir(false, commandName(cmd)), app.ScanningReads())
}

// commandName is cmd's path without the program's name ("user add").
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func (e *env) keysStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the key-encryption key and a summary of data keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			inv, err := a.KeyLifecycle().Inventory(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "key-encryption key   %s\n", inv.KEK)
			fmt.Fprintf(e.stdout, "KEK primary key id   %d\n", inv.PrimaryID)
			fmt.Fprintf(e.stdout, "data keys            %d patient, %d joint, %d organisation, %d system\n", inv.Patients, inv.Joint, inv.Org, inv.System)
			fmt.Fprintf(e.stdout, "crypto-shredded      %d patients\n", inv.Shredded)
			ids := inv.KEKIDs()
			for _, id := range ids {
				mark := ""
				if id == inv.PrimaryID {
					mark = " (primary)"
				}
				fmt.Fprintf(e.stdout, "wrapped by KEK %-10d %d keys%s\n", id, inv.ByKEK[id], mark)
			}
			if len(ids) > 1 {
				fmt.Fprintln(e.stdout, "some keys are wrapped by an older KEK: run \"phivault keys rotate\" to finish")
			}
			st, err := a.KeyLifecycle().ErasureStatus(cmd.Context())
			if err != nil {
				return err
			}
			e.printErasureStatus(st)
			return nil
		},
	}
}

func (e *env) keysRotateCmd() *cobra.Command {
	var deks bool
	var owner string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the KEK (re-wrap every data key), or with --deks re-encrypt data under new data keys",
		Long: `rotate without flags adds a new key-encryption key to the key file and re-wraps
every data key under it. It runs online, beside a serving phivault, and is
resumable: if an earlier run stopped, it finishes that run instead.

--deks gives every patient (or --owner Patient/ID) a new data key, re-encrypts
every stored version under it, and then destroys the old data keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			bar := e.phaseBar()
			if deks || owner != "" {
				n, err := a.KeyLifecycle().RotateDEKs(cmd.Context(), ident.Owner(owner), bar.update)
				bar.done()
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "re-encrypted %d versions under new data keys; old data keys destroyed\n", n)
				return nil
			}
			rotated, n, err := a.KeyLifecycle().RotateKEK(cmd.Context(), bar.update)
			bar.done()
			if err != nil {
				return err
			}
			if rotated {
				fmt.Fprintf(e.stdout, "new KEK %d is primary; re-wrapped %d keys\n", a.Keys.KEK().PrimaryID(), n)
			} else {
				fmt.Fprintf(e.stdout, "resumed an earlier rotation; re-wrapped %d keys under KEK %d\n", n, a.Keys.KEK().PrimaryID())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deks, "deks", false, "rotate data keys and re-encrypt all data")
	cmd.Flags().StringVar(&owner, "owner", "", "with --deks, only this owner (e.g. Patient/123)")
	return cmd
}

func (e *env) keysShredEpochCmd() *cobra.Command {
	var status, force, addOnly bool
	cmd := &cobra.Command{
		Use:   "shred-epoch",
		Short: "Make erasures final: re-wrap every data key under a new KEK key and destroy the old KEK keys",
		Long: `shred-epoch runs a KEK epoch (docs/adr/0015): it adds a new key to the key
file, re-wraps every data key under it, checks every one under the new key
alone, and then destroys the older KEK keys, so that no copy of an erased
patient's data key left in free pages, the WAL, dead tuples, replicas or
backups can be opened with the key file. Finally it checkpoints SQLite's WAL
or vacuums PostgreSQL's keys table. "serve" runs it by itself after every
erasure unless keys.shred_epoch_manual is set; this command runs it now, also
beside a running server, and resumes an interrupted epoch.

With keys.shred_retention_days > 0 the retired keys are kept that long (older
backups stay restorable) and destroyed by a later run.

--status only prints how final the erasures are. --force starts an epoch even
if no erasure is pending. --add-key-only stops once the new key is in the key
file (a fleet whose hosts keep their own copy distributes it then, and runs
the command again).

With a Vault transit KEK, rotate the transit key first; this command then
re-wraps every data key under the newest version and prints the Vault steps
that destroy the older versions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if status {
				st, err := a.KeyLifecycle().ErasureStatus(cmd.Context())
				if err != nil {
					return err
				}
				e.printErasureStatus(st)
				return nil
			}
			bar := e.phaseBar()
			if a.Config.Keys.KeyFile == "" {
				n, err := a.KeyLifecycle().RewrapAll(cmd.Context(), bar.update)
				bar.done()
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "re-wrapped %d keys under the newest version of %s\n", n, a.Keys.KEK().Description())
				fmt.Fprint(e.stdout, vaultSteps)
				return nil
			}
			rep, err := a.KeyLifecycle().RunKEKEpoch(cmd.Context(), lifecycle.EpochOptions{Force: force, AddOnly: addOnly, Progress: bar.update})
			bar.done()
			if err != nil {
				return err
			}
			switch {
			case rep.Epoch.Epoch == 0:
				fmt.Fprintln(e.stdout, "no erasure is pending: nothing to do")
			default:
				verb := "resumed"
				if rep.Started {
					verb = "ran"
				}
				fmt.Fprintf(e.stdout, "%s KEK epoch %d: %s, KEK %d primary, re-wrapped %d keys, destroyed %d KEK keys\n",
					verb, rep.Epoch.Epoch, rep.Epoch.State, rep.Epoch.KEKID, rep.Rewrapped, len(rep.Destroyed))
			}
			e.printErasureStatus(rep.Status)
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only print how final the erasures are")
	cmd.Flags().BoolVar(&force, "force", false, "start an epoch even if no erasure is pending")
	cmd.Flags().BoolVar(&addOnly, "add-key-only", false, "stop once the new KEK key is in the key file (per-host key files: distribute it, then run again)")
	return cmd
}

// vaultSteps are the operator's Vault steps after RewrapAll (shown with
// the transit mount and key name of the configured URI in the docs).
const vaultSteps = `now destroy the older transit key versions in Vault (an admin token):
  vault read transit/keys/<name>                      # note latest_version
  vault write transit/keys/<name>/config min_decryption_version=<latest> min_encryption_version=<latest>
  vault write transit/keys/<name>/trim min_available_version=<latest>
`

// printErasureStatus prints how final the erasures are.
func (e *env) printErasureStatus(st lifecycle.ErasureStatus) {
	if st.KMS {
		fmt.Fprintln(e.stdout, "erasures             final once the Vault transit key was rotated and its older versions trimmed (phivault keys shred-epoch)")
		return
	}
	fmt.Fprintf(e.stdout, "erasures final       %d\n", st.Final)
	if st.Retained > 0 {
		fmt.Fprintf(e.stdout, "erasures retained    %d (retired KEK keys kept until %s)\n", st.Retained, st.RetainedUntil.UTC().Format(time.RFC3339))
	}
	if st.Pending > 0 {
		fmt.Fprintf(e.stdout, "erasures pending     %d (their KEK key is live: run \"phivault keys shred-epoch\")\n", st.Pending)
	}
	if p, ok := st.InProgress(); ok {
		fmt.Fprintf(e.stdout, "KEK epoch %d          %s (interrupted or running: \"phivault keys shred-epoch\" resumes it)\n", p.Epoch, p.State)
	} else if n := len(st.Epochs); n > 0 {
		l := st.Epochs[n-1]
		fmt.Fprintf(e.stdout, "last KEK epoch       %d %s (KEK %d)\n", l.Epoch, l.State, l.KEKID)
	}
	for _, r := range st.Retired {
		if r.Destroyed.IsZero() {
			fmt.Fprintf(e.stdout, "retired KEK key      %d (epoch %d) still in the key file\n", r.KEKID, r.Epoch)
		}
	}
}

// phaseBar shows a progress bar per phase of a long operation.
type phaseBar struct {
	e     *env
	phase string
	bar   *progressbar.ProgressBar
}

func (e *env) phaseBar() *phaseBar { return &phaseBar{e: e} }

func (p *phaseBar) update(phase string, done, total int64) {
	if phase != p.phase {
		if p.bar != nil {
			_ = p.bar.Finish()
			fmt.Fprintln(p.e.stderr)
		}
		p.phase = phase
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.e.stderr),
			progressbar.OptionSetDescription(phase), progressbar.OptionShowCount(), progressbar.OptionSetItsString("items"), progressbar.OptionShowIts())
	}
	_ = p.bar.Set64(done)
}

func (p *phaseBar) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.e.stderr)
	}
}
