package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
)

func (e *env) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit log: verify it, print its verifier key, monitor a server, export it to a SIEM",
	}
	cmd.AddCommand(e.auditVerifyCmd(), e.auditPubkeyCmd(), e.auditMonitorCmd(), e.auditWitnessKeyCmd(), e.auditExportCmd(), e.auditAcceptCmd())
	return cmd
}

func (e *env) auditPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey",
		Short: "Print the audit log's note verifier key (give it to monitors and auditors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			fmt.Fprintln(e.stdout, a.Transparency().VerifierKey())
			return nil
		},
	}
}

func (e *env) auditVerifyCmd() *cobra.Command {
	var vkey string
	var kept []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's Merkle tree from the stored events and check every checkpoint",
		Long: `verify opens every entry bundle with the log key, recomputes each leaf's hash
and the tree, compares every stored hash tile, checks every stored checkpoint's
signature and root (so all of them are consistent with each other) and opens
every record not yet integrated, and names the first divergence: the leaf index
(or the pending record's sequence number) and what differs.

By default checkpoints are checked with the server's own key; --vkey pins the
verifier key you hold (from "phivault audit pubkey" run earlier, or published).

The log must also extend every checkpoint kept outside the database: the one
the server keeps beside the key file (audit.checkpoint_file), the witnesses'
(audit.witness_checkpoints) and each --checkpoint FILE (a signed checkpoint you
kept, e.g. a monitor's state or a witness's co-signed note). A log emptied and
signed again from size 0, or restored from an older copy, fails here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if vkey == "" {
				vkey = a.Transparency().VerifierKey()
			}
			if _, err := merkle.NewVerifier(vkey); err != nil {
				return fmt.Errorf("--vkey: %w", err)
			}
			var extra [][]byte
			for _, f := range kept {
				b, err := readCheckpointFile(f)
				if err != nil {
					return fmt.Errorf("--checkpoint: %w", err)
				}
				extra = append(extra, b)
			}
			bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(e.stderr),
				progressbar.OptionSetDescription("verifying audit log"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond))
			var last int64
			r, err := a.Transparency().VerifyWith(cmd.Context(), vkey, func(done, total int64) {
				if total > 0 {
					bar.ChangeMax64(total)
				}
				_ = bar.Add64(done - last)
				last = done
			}, extra...)
			_ = bar.Finish()
			fmt.Fprintln(e.stderr)
			var d *merkle.Divergence
			if errors.As(err, &d) {
				fmt.Fprintf(e.stdout, "TAMPERED %s\n", d.Error())
				return errors.New("audit log verification failed")
			}
			if err != nil {
				return err
			}
			if alarm := a.Transparency().Alarm(); errors.Is(alarm, merkle.ErrAnchorMissing) {
				// The log verifies, but nothing outside the database
				// bounds it: it may have been emptied or rewritten.
				fmt.Fprintf(e.stdout, "MISSING %s\n", alarm.Error())
				return errors.New("audit log verification failed: the checkpoint kept outside the database is missing")
			}
			fmt.Fprintf(e.stdout, "leaves %d, checkpoints %d, root %s, pending %d, kept outside the database %d\n", r.Leaves, r.Checkpoints, r.Root, r.Pending, r.Pinned)
			fmt.Fprintln(e.stdout, "OK: every audit event matches the tree and every checkpoint")
			return nil
		},
	}
	cmd.Flags().StringVar(&vkey, "vkey", "", "verifier key to check checkpoints with (default: the server's own)")
	cmd.Flags().StringArrayVar(&kept, "checkpoint", nil, "a signed checkpoint the log must extend (a file; repeatable): a note, or a monitor's state file")
	return cmd
}

func (e *env) auditAcceptCmd() *cobra.Command {
	var kept []string
	cmd := &cobra.Command{
		Use:   "accept-checkpoint",
		Short: "Accept the database's audit log after the checkpoint kept outside it was lost",
		Long: `accept-checkpoint re-creates the checkpoint the server keeps beside the key file
(audit.checkpoint_file) from the database, when that file is missing: the server
then refuses to sign (an integrity alarm), because deleting it would otherwise
let an emptied or rewritten log be signed anew (ADR 0016).

Restore the file from a copy if you can. Otherwise accept-checkpoint verifies
the whole log as "audit verify" does (against the witnesses' checkpoints and each
--checkpoint FILE), prints the checkpoint it accepts, keeps it, and records the
acceptance in the audit log with a high alert. It refuses while a checkpoint is
kept, and when the log does not verify. Stop the server first or restart it
after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			var extra [][]byte
			for _, f := range kept {
				b, err := readCheckpointFile(f)
				if err != nil {
					return fmt.Errorf("--checkpoint: %w", err)
				}
				extra = append(extra, b)
			}
			own, err := a.Transparency().Kept()
			if err != nil {
				return err
			}
			r, err := a.Transparency().VerifyWith(cmd.Context(), a.Transparency().VerifierKey(), nil, extra...)
			var d *merkle.Divergence
			if errors.As(err, &d) {
				fmt.Fprintf(e.stdout, "TAMPERED %s\n", d.Error())
				return errors.New("the audit log does not verify: nothing accepted")
			}
			if err != nil {
				return fmt.Errorf("verifying the audit log: %w", err)
			}
			fmt.Fprintf(e.stdout, "verified: leaves %d, checkpoints %d, root %s, pending %d, kept outside the database %d\n", r.Leaves, r.Checkpoints, r.Root, r.Pending, len(own)+len(extra))
			cp, err := a.Transparency().Accept(cmd.Context(), cliAgent())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "ACCEPTED the audit log of %d leaves, checkpoint signed %s, root %s\nkept in %s:\n%s",
				cp.Size, cp.Created.UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(cp.Root), a.Config.Audit.CheckpointFile, cp.Note)
			fmt.Fprintln(e.stdout, "recorded in the audit log (audit-log-accept) with a high alert")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&kept, "checkpoint", nil, "a signed checkpoint the log must extend (a file; repeatable): a note, or a monitor's state file")
	return cmd
}

// readCheckpointFile reads a kept checkpoint: a signed note, or the
// JSON state file of "audit monitor" (its checkpoint field).
func readCheckpointFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4*merkle.MaxCheckpointSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > 4*merkle.MaxCheckpointSize {
		return nil, fmt.Errorf("%s: too large for a checkpoint", path)
	}
	if len(b) > 0 && b[0] == '{' {
		st, err := merkle.ParseMonitorState(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return []byte(st.Checkpoint), nil
	}
	return b, nil
}

// errAlarm is the monitor's exit for a fork, rewrite, rollback or bad
// signature: the process exits 1 and the state file is unchanged.
var errAlarm = errors.New("audit log monitor: alarm raised; the saved state is unchanged")

// Monitor limits.
const (
	// monitorTimeout bounds one HTTP request of the monitor.
	monitorTimeout = 30 * time.Second
	// maxTileBytes is a full hash tile: 256 hashes of 32 bytes.
	maxTileBytes = merkle.TileWidth * tlog.HashSize
)

func (e *env) auditMonitorCmd() *cobra.Command {
	var base, vkey, state, caFile, witnessKey, cosigned string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Check a phivault audit log over HTTP: signatures, consistency, no fork, rewrite or rollback",
		Long: `monitor reads only the public endpoints of a phivault server (/log/checkpoint
and /log/tile/...). It checks the latest checkpoint's signature with --vkey and,
against the last checkpoint it accepted (kept in --state), that the log only
grew: same size with another root is a FORK, a smaller size a ROLLBACK, a larger
tree that does not extend the old one a REWRITE. On an alarm it prints ALARM,
keeps the old state as evidence and exits with status 1.

With --witness-key (made by "phivault audit witness-key") it also acts as a
witness: each checkpoint it accepted is co-signed (C2SP tlog-cosignature,
cosignature/v1) and written to --cosigned, for the log operator to publish next
to the checkpoint. It never co-signs a checkpoint that raised an alarm.

Run it on another machine, from cron or with --interval.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || vkey == "" || state == "" {
				return fmt.Errorf("%w: --url, --vkey and --state are required", errUsage)
			}
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("%w: --url must be an absolute http(s) URL", errUsage)
			}
			v, err := merkle.NewVerifier(vkey)
			if err != nil {
				return fmt.Errorf("--vkey: %w", err)
			}
			client := &http.Client{Timeout: monitorTimeout}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--cacert: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--cacert: no PEM certificate in %s", caFile)
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			var w *witness
			switch {
			case witnessKey != "" && cosigned == "":
				return fmt.Errorf("%w: --witness-key needs --cosigned", errUsage)
			case witnessKey == "" && cosigned != "":
				return fmt.Errorf("%w: --cosigned needs --witness-key", errUsage)
			case witnessKey != "":
				b, err := os.ReadFile(witnessKey)
				if err != nil {
					return fmt.Errorf("--witness-key: %w", err)
				}
				mw, err := merkle.NewWitness(strings.TrimSpace(string(b)), v)
				if err != nil {
					return fmt.Errorf("--witness-key %s: %w", witnessKey, err)
				}
				w = &witness{w: mw, out: cosigned}
			}
			m := merkle.NewMonitor(&httpSource{client: client, base: strings.TrimSuffix(u.String(), "/")}, v.Name(), v)
			for {
				err := e.monitorOnce(cmd.Context(), m, state, w)
				if err != nil && !errors.Is(err, errAlarm) {
					err = e.tlsHint(err, "--cacert")
				}
				switch {
				case errors.Is(err, errAlarm), interval <= 0:
					return err
				case err != nil:
					// A server that cannot be reached is not an alarm;
					// keep watching and say so.
					fmt.Fprintf(e.stderr, "phivault: audit monitor: %v (retrying in %s)\n", err, interval)
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "url", "", "base URL of the phivault server, e.g. https://fhir.example.org")
	f.StringVar(&vkey, "vkey", "", "the log's note verifier key (phivault audit pubkey)")
	f.StringVar(&state, "state", "", "file keeping the last checkpoint accepted (created if missing)")
	f.StringVar(&caFile, "cacert", "", "PEM CA certificate to trust for the server (default: the system roots)")
	f.DurationVar(&interval, "interval", 0, "check again at this interval (default: check once)")
	f.StringVar(&witnessKey, "witness-key", "", "file holding this witness's signing key: co-sign each accepted checkpoint")
	f.StringVar(&cosigned, "cosigned", "", "file the co-signed checkpoint is written to (with --witness-key)")
	return cmd
}

// witness co-signs the checkpoints the monitor accepted into out.
type witness struct {
	w   *merkle.Witness
	out string
}

func (e *env) auditWitnessKeyCmd() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "witness-key",
		Short: "Make a witness signing key for \"audit monitor --witness-key\" and print its verifier key",
		Long: `witness-key writes a new Ed25519 witness signing key to --out (mode 0600; it
refuses to replace a file) and prints the witness's cosignature/v1 verifier key:
give that to whoever checks the co-signed checkpoints. Keep the signing key on
the witness machine only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || out == "" {
				return fmt.Errorf("%w: --name and --out are required", errUsage)
			}
			skey, vkey, err := merkle.GenerateWitnessKey(name)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if _, err := f.WriteString(skey + "\n"); err != nil {
				f.Close()
				return fmt.Errorf("--out: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintln(e.stdout, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the witness's name, e.g. witness.example.org")
	cmd.Flags().StringVar(&out, "out", "", "file to write the signing key to")
	return cmd
}

// monitorOnce runs one check, prints the outcome, saves the state and,
// for a witness, co-signs the accepted checkpoint.
func (e *env) monitorOnce(ctx context.Context, m *merkle.Monitor, statePath string, w *witness) error {
	var prev *merkle.MonitorState
	b, err := os.ReadFile(statePath)
	switch {
	case err == nil:
		s, err := merkle.ParseMonitorState(b)
		if err != nil {
			return fmt.Errorf("--state %s: %w", statePath, err)
		}
		prev = &s
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--state: %w", err)
	}
	next, err := m.Check(ctx, prev)
	for _, alarm := range []error{merkle.ErrFork, merkle.ErrRewrite, merkle.ErrRollback, merkle.ErrSignature} {
		if errors.Is(err, alarm) {
			fmt.Fprintf(e.stdout, "ALARM %s\n", err)
			return errAlarm
		}
	}
	if err != nil {
		return err
	}
	if prev != nil && prev.Size == next.Size {
		fmt.Fprintf(e.stdout, "OK size %d unchanged, root %s\n", next.Size, next.Root)
	} else if prev != nil {
		fmt.Fprintf(e.stdout, "OK size %d -> %d consistent, root %s\n", prev.Size, next.Size, next.Root)
	} else {
		fmt.Fprintf(e.stdout, "OK first checkpoint size %d, root %s\n", next.Size, next.Root)
	}
	out, err := jsonIndent(next)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(statePath, out, 0o644); err != nil {
		return err
	}
	if w == nil {
		return nil
	}
	cos, err := w.w.Cosign([]byte(next.Checkpoint))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(w.out, cos, 0o644); err != nil {
		return fmt.Errorf("--cosigned: %w", err)
	}
	fmt.Fprintf(e.stdout, "COSIGNED size %d as %s\n", next.Size, w.w.Name())
	return nil
}

// httpSource reads a log's public endpoints. Responses are capped.
type httpSource struct {
	client *http.Client
	base   string
}

func (s *httpSource) get(ctx context.Context, path string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", path, max)
	}
	return b, nil
}

func (s *httpSource) Checkpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, "/log/checkpoint", merkle.MaxCheckpointSize)
}

func (s *httpSource) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	return s.get(ctx, "/log/tile/"+merkle.TilePath(t), maxTileBytes)
}

// writeFileAtomic replaces path with data through a temporary file in
// the same directory, so a crash never leaves a half-written state.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("saving state: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("saving state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(b, '\n'), nil
}
