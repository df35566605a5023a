package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage"
)

func (e *env) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Inspect and rotate encryption keys"}
	cmd.AddCommand(e.keysStatusCmd(), e.keysRotateCmd())
	return cmd
}

func (e *env) openApp(cmd *cobra.Command) (*app.App, error) {
	c, err := e.loadConfig(config.Overrides{})
	if err != nil {
		return nil, err
	}
	return app.Open(cmd.Context(), c, e.logger())
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
			kek := a.Keys.KEK()
			byKEK := map[uint32]int{}
			var patients, org, system, shredded int
			err = a.Store.ScanKeys(cmd.Context(), func(r storage.KeyRecord) error {
				switch {
				case r.Shredded:
					shredded++
					return nil
				case strings.HasPrefix(r.Owner, "system/"):
					system++
				case strings.HasPrefix(r.Owner, "Patient/"):
					patients++
				default:
					org++
				}
				byKEK[r.KEKID]++
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "key-encryption key   %s\n", kek.Description())
			fmt.Fprintf(e.stdout, "KEK primary key id   %d\n", kek.PrimaryID())
			fmt.Fprintf(e.stdout, "data keys            %d patient, %d organisation, %d system\n", patients, org, system)
			fmt.Fprintf(e.stdout, "crypto-shredded      %d patients\n", shredded)
			ids := make([]int, 0, len(byKEK))
			for id := range byKEK {
				ids = append(ids, int(id))
			}
			sort.Ints(ids)
			for _, id := range ids {
				mark := ""
				if uint32(id) == kek.PrimaryID() {
					mark = " (primary)"
				}
				fmt.Fprintf(e.stdout, "wrapped by KEK %-10d %d keys%s\n", id, byKEK[uint32(id)], mark)
			}
			if len(ids) > 1 {
				fmt.Fprintln(e.stdout, "some keys are wrapped by an older KEK: run \"phivault keys rotate\" to finish")
			}
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
				n, err := a.RotateDEKs(cmd.Context(), owner, bar.update)
				bar.done()
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "re-encrypted %d versions under new data keys; old data keys destroyed\n", n)
				return nil
			}
			rotated, n, err := a.RotateKEK(cmd.Context(), bar.update)
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
