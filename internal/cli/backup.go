package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/backup"
)

func (e *env) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Encrypted, verifiable backups: create, list, verify, restore, drill (docs/backup-and-restore.md)",
	}
	cmd.AddCommand(e.backupCreateCmd(), e.backupListCmd(), e.backupVerifyCmd(), e.backupRestoreCmd(), e.backupDrillCmd())
	return cmd
}

// byteBar is a progress bar of bytes per phase on stderr, shown only
// when stderr is a terminal.
func (e *env) byteBar() (backup.Progress, func()) {
	if !isTerminal(e.stderr) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	var phase string
	done := func() {
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(e.stderr)
		}
	}
	return func(p string, n, total int64) {
		if p != phase || bar == nil {
			done()
			phase = p
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription(p),
				progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100*time.Millisecond))
		}
		_ = bar.Set64(n)
	}, done
}

func (e *env) backupCreateCmd() *cobra.Command {
	var recipients, recipientFiles []string
	var out string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Back up the data directory's instance, encrypted to age recipients, into --out",
		Long: `create takes a consistent snapshot of the database (SQLite: VACUUM INTO from a
reader of its own; PostgreSQL: one REPEATABLE READ transaction and COPY per
table), archives it with the configuration, verifier key, policies and TLS files
of the data directory, and encrypts everything with age to the recipients. It
runs beside a serving phivault. The key file is never in a backup: keep it (or
an escrow, "phivault keys escrow") apart.

The manifest (which hashes every file) is sealed with the instance's KEK, so
create opens the key file (or KMS) the configuration names, like other offline
commands, and records the backup in the audit log. restore refuses a backup
whose seal does not check with the key file it restores with.

It writes NAME (the ciphertext), NAME.sha256 (its hash: anyone can check it)
and NAME.json (a summary without PHI for "backup list").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("%w: --out DIR is required", errUsage)
			}
			rs, err := backup.ParseRecipients(recipients, recipientFiles)
			if err != nil {
				return err
			}
			st, err := backup.NewDirStore(out)
			if err != nil {
				return err
			}
			// The instance, opened like other offline commands: its KEK
			// seals the manifest, its audit log records the backup.
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			p, done := e.byteBar()
			made, err := a.CreateBackup(cmd.Context(), st, backup.CreateOptions{Recipients: rs, Progress: p}, cliAgent())
			done()
			for _, f := range made.Stale {
				fmt.Fprintf(e.stderr, "removed %s: left by a backup that did not finish\n", f)
			}
			if err != nil {
				return err
			}
			m := made.Manifest
			fmt.Fprintf(e.stdout, "backup %s\n  in        %s\n  engine    %s, schema %d\n  size      %d bytes, SHA-256 %s\n", made.Name, st, m.Engine, m.Schema, made.Size, made.SHA256)
			fmt.Fprintf(e.stdout, "  holds     %d resources, %d patients, %d audit events (+%d pending)\n", m.Counts.Resources, m.Counts.Patients, m.Counts.AuditEvents, m.Counts.AuditPending)
			fmt.Fprintf(e.stdout, "  audit log checkpoint size %d\n  KEK keys  %s (a restore needs a key file holding them)\n", m.Checkpoint.Size, idList(m.KEKIDs))
			fmt.Fprintln(e.stdout, "  manifest  sealed with the KEK; recorded in the audit log")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "age recipient (age1...; repeatable)")
	cmd.Flags().StringArrayVar(&recipientFiles, "recipients-file", nil, "file of age recipients, one a line (as age -R; repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "directory to store the backup in")
	return cmd
}

func idList(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

func (e *env) backupListCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "list DEST",
		Short: "List the backups in a directory (newest first), from their summaries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStoreDir(args[0])
			if err != nil {
				return err
			}
			ls, err := backup.List(cmd.Context(), st)
			if err != nil {
				return err
			}
			var have []uint32
			if keyFile != "" {
				if have, err = app.KeyFileIDs(cmd.Context(), keyFile); err != nil {
					return fmt.Errorf("--key-file: %w", err)
				}
			}
			if len(ls) == 0 {
				fmt.Fprintf(e.stdout, "no backups in %s\n", st)
				return nil
			}
			fmt.Fprintf(e.stdout, "%-46s %-20s %12s %-8s %10s  %s\n", "NAME", "CREATED", "BYTES", "ENGINE", "LOG SIZE", "KEK KEYS")
			for _, l := range ls {
				engine, cp, ids := "?", "?", "(no summary: "+errText(l.SummaryErr)+")"
				if s := l.Summary; s != nil {
					engine, cp, ids = s.Engine, fmt.Sprint(s.Checkpoint.Size), idList(s.KEKIDs)
					if have != nil {
						if miss := backup.MissingKEKIDs(s.KEKIDs, have); len(miss) > 0 {
							ids += fmt.Sprintf("  NOT RESTORABLE with %s: lacks KEK %s", keyFile, idList(miss))
						}
					}
				}
				if !l.HasSum {
					ids += "  (no .sha256)"
				}
				fmt.Fprintf(e.stdout, "%-46s %-20s %12d %-8s %10s  %s\n", l.Name, l.Created.UTC().Format(time.RFC3339), l.Size, engine, cp, ids)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "say which backups this key file cannot restore")
	return cmd
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// openStoreDir opens an existing backup directory.
func openStoreDir(dir string) (*backup.DirStore, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return backup.NewDirStore(dir)
}

// backupRef resolves DEST/NAME (a backup file) or DEST (its newest).
func backupRef(cmd *cobra.Command, ref string) (*backup.DirStore, string, error) {
	if info, err := os.Stat(ref); err == nil && info.IsDir() {
		st, err := backup.NewDirStore(ref)
		if err != nil {
			return nil, "", err
		}
		name, err := backup.Newest(cmd.Context(), st)
		return st, name, err
	}
	dir, name := filepath.Split(ref)
	if dir == "" {
		dir = "."
	}
	if _, ok := backup.IsBackupName(name); !ok {
		return nil, "", fmt.Errorf("%s: not a backup (DEST/phivault-<time>.age, or DEST for the newest)", ref)
	}
	st, err := openStoreDir(dir)
	return st, name, err
}

func (e *env) backupVerifyCmd() *cobra.Command {
	var identities []string
	var keyFile string
	var expansion int64
	cmd := &cobra.Command{
		Use:   "verify DEST/NAME",
		Short: "Check a backup: its checksum; with --identity every file, the manifest and the database's integrity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, name, err := backupRef(cmd, args[0])
			if err != nil {
				return err
			}
			o := backup.VerifyOptions{Limits: backup.Limits{MaxExpansion: expansion}}
			if len(identities) > 0 {
				if o.Identities, err = backup.ParseIdentityFiles(identities...); err != nil {
					return err
				}
			}
			if keyFile != "" {
				if o.Auth, o.KeyIDs, err = app.KeyFileChecker(cmd.Context(), keyFile); err != nil {
					return fmt.Errorf("--key-file: %w", err)
				}
			}
			p, done := e.byteBar()
			o.Progress = p
			r, err := backup.Verify(cmd.Context(), st, name, o)
			done()
			if err != nil {
				return fmt.Errorf("verification failed: %w", err)
			}
			fmt.Fprintf(e.stdout, "%s: %d bytes, SHA-256 %s matches %s%s\n", name, r.Size, r.SHA256, name, backup.SumSuffix)
			if !r.Decrypted {
				fmt.Fprintln(e.stdout, "NOT DECRYPTED: only the checksum was checked (give --identity to check the content)")
				return nil
			}
			m := r.Manifest
			fmt.Fprintf(e.stdout, "decrypted: %d files match the manifest; engine %s, schema %d, created %s\n", len(m.Files), m.Engine, m.Schema, m.Created.Format(time.RFC3339))
			if m.Engine == backup.EngineSQLite {
				fmt.Fprintln(e.stdout, "database: PRAGMA integrity_check ok")
			}
			fmt.Fprintf(e.stdout, "holds %d resources, %d patients, %d audit events; audit log checkpoint size %d\n", m.Counts.Resources, m.Counts.Patients, m.Counts.AuditEvents, m.Checkpoint.Size)
			fmt.Fprintf(e.stdout, "KEK keys needed: %s\n", idList(m.KEKIDs))
			if r.SummaryMismatch != "" {
				return fmt.Errorf("verification failed: %s%s differs from the manifest (%s): the summary was altered", name, backup.SummarySuffix, r.SummaryMismatch)
			}
			if len(r.MissingKEKIDs) > 0 {
				return fmt.Errorf("NOT RESTORABLE with %s: it lacks KEK key(s) %s that wrap this backup's data keys (after a KEK epoch only an escrow of the old key file restores it)", keyFile, idList(r.MissingKEKIDs))
			}
			if keyFile != "" {
				fmt.Fprintf(e.stdout, "manifest sealed by this key file's KEK; restorable with %s\n", keyFile)
			} else {
				fmt.Fprintln(e.stdout, "manifest seal NOT CHECKED (give --key-file: without it anyone holding a recipient could have made this archive)")
			}
			fmt.Fprintln(e.stdout, "OK")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&identities, "identity", nil, "age identity file (repeatable); without it only the checksum is checked")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "check the manifest's seal with this key file's KEK, and that it holds the backup's KEK keys")
	cmd.Flags().Int64Var(&expansion, "max-expansion", backup.DefaultMaxExpansion, "refuse an archive that decompresses to more than this many times its size (at least 256 MiB)")
	return cmd
}

// restoreKeys are the flags that give a restore its key file: --key-file,
// or --escrow files opened with the identities.
type restoreKeys struct {
	identities, escrows, checkpoints []string
	keyFile, postgres, caCert        string
	expansion                        int64
}

func (k *restoreKeys) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&k.identities, "identity", nil, "age identity file (repeatable): decrypts the backup (and escrows)")
	f.StringVar(&k.keyFile, "key-file", "", "the key file (KEK) to restore with")
	f.StringArrayVar(&k.escrows, "escrow", nil, `instead of --key-file: a key escrow ("phivault keys escrow") to rebuild it from (repeatable)`)
	f.StringVar(&k.postgres, "postgres", "", "PostgreSQL: an empty database to restore into (drill: a server where a scratch database may be created)")
	f.Int64Var(&k.expansion, "max-expansion", backup.DefaultMaxExpansion, "refuse an archive that decompresses to more than this many times its size (at least 256 MiB)")
}

// resolve parses the identities and returns the key file to use, and a
// cleanup removing a key file rebuilt from an escrow.
func (k *restoreKeys) resolve(cmd *cobra.Command) (backup.Identities, string, func(), error) {
	ids, err := backup.ParseIdentityFiles(k.identities...)
	if err != nil {
		return nil, "", nil, err
	}
	switch {
	case k.keyFile != "" && len(k.escrows) > 0:
		return nil, "", nil, fmt.Errorf("%w: --key-file or --escrow, not both", errUsage)
	case k.keyFile != "":
		return ids, k.keyFile, func() {}, nil
	case len(k.escrows) == 0:
		return nil, "", nil, fmt.Errorf("%w: --key-file (or --escrow) is required: the key file is never in a backup", errUsage)
	}
	dir, err := os.MkdirTemp("", "phivault-escrow-*")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, "kek.json")
	if _, err := app.RecoverKeyFile(cmd.Context(), k.escrows, ids, path); err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("--escrow: %w", err)
	}
	return ids, path, cleanup, nil
}

func (e *env) backupRestoreCmd() *cobra.Command {
	var k restoreKeys
	cmd := &cobra.Command{
		Use:   "restore SOURCE",
		Short: "Restore a backup (DEST/NAME, or DEST for the newest) into a new data directory (--data), and verify it",
		Long: `restore decrypts and checks the backup, writes it into the new, empty data
directory --data (SQLite) or the empty database --postgres, copies the key file
in (keys/kek.json), keeps the backup's audit log checkpoint beside it, then runs
"phivault verify" and "audit verify" on the restored instance.

--checkpoint FILE|URL (repeatable) is a checkpoint the server published after
the backup (a monitor's state, a kept note, or the server's base URL): if it is
no larger than the restored log, the restored log must extend it, else the
history was rolled back or forked and restore fails; if it is larger, the
events after the backup are not in it (the recovery point), and with a URL the
published tiles prove the restored log is a prefix of the published one.

It refuses a target that is not empty, and a key file without the backup's KEK
keys (after a KEK epoch only an escrow of the old key file restores an older
backup: by design).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("data") {
				return fmt.Errorf("%w: --data NEWDIR is required (the new data directory)", errUsage)
			}
			st, name, err := backupRef(cmd, args[0])
			if err != nil {
				return err
			}
			ids, keyFile, cleanup, err := k.resolve(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			// No logger for the restored instance: what it finds wrong is
			// the restore's error, printed once, not log lines before it.
			o := app.RestoreOptions{Identities: ids, KeyFile: keyFile, DataDir: e.dataDir, Postgres: k.postgres,
				Limits: backup.Limits{MaxExpansion: k.expansion}}
			for _, c := range k.checkpoints {
				raw, src, err := e.checkpointArg(cmd, c, k.caCert)
				if err != nil {
					return fmt.Errorf("--checkpoint: %w", err)
				}
				o.Checkpoints = append(o.Checkpoints, raw)
				if src != nil {
					o.Tiles = src
				}
			}
			p, done := e.byteBar()
			o.Progress = p
			start := time.Now()
			rep, err := app.RestoreBackup(cmd.Context(), st, name, o)
			done()
			e.printRestore(rep, err == nil)
			if err != nil {
				return fmt.Errorf("restore failed: %w", err)
			}
			fmt.Fprintf(e.stdout, "OK: restored %s into %s and verified it in %s\n", name, e.dataDir, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	k.flags(cmd)
	cmd.Flags().StringArrayVar(&k.checkpoints, "checkpoint", nil, "a later checkpoint: FILE (note or monitor state) or the server's base URL (repeatable)")
	cmd.Flags().StringVar(&k.caCert, "cacert", "", "CA certificate of the --checkpoint URL's server")
	return cmd
}

// printRestore prints what was restored, and what it verified only
// when the whole restore succeeded: no success wording before a failure.
func (e *env) printRestore(rep app.RestoreReport, ok bool) {
	m := rep.Restored.Manifest
	if rep.Restored.Name == "" {
		return
	}
	fmt.Fprintf(e.stdout, "restored %s (%s): created %s, audit checkpoint size %d (authenticated manifest); %d resources, %d patients\n",
		rep.Restored.Name, m.Engine, m.Created.Format(time.RFC3339), m.Checkpoint.Size, m.Counts.Resources, m.Counts.Patients)
	for _, p := range rep.Policies {
		fmt.Fprintf(e.stdout, "POLICY OVERRIDE restored: %s (it changes who may read what: review it before serving)\n", p)
	}
	for _, c := range rep.Config {
		fmt.Fprintf(e.stdout, "config restored (not the default): %s\n", c)
	}
	if !ok {
		if rep.Size > 0 && !rep.Verify.OK() {
			printVerify(e, rep.Verify, false)
		}
		return
	}
	printVerify(e, rep.Verify, false)
	fmt.Fprintf(e.stdout, "audit log: %d leaves; extends the backup's checkpoint of size %d\n", rep.Size, m.Checkpoint.Size)
	for _, c := range rep.Matched {
		fmt.Fprintf(e.stdout, "checkpoint of size %d: the restored log extends it\n", c.Size)
	}
	for i, c := range rep.Beyond {
		how := "not proven (give the server's URL to check it with its tiles)"
		if i < len(rep.Proven) && rep.Proven[i] {
			how = "the published log extends the restored one (proven with its tiles)"
		}
		fmt.Fprintf(e.stdout, "RECOVERY POINT: the checkpoint of size %d is %d events past this backup: they are not in it; %s\n", c.Size, c.Size-rep.Size, how)
	}
}

// checkpointArg reads a --checkpoint: a file, or a server's base URL
// (then also the source of its tiles).
func (e *env) checkpointArg(cmd *cobra.Command, arg, caCert string) ([]byte, merkle.Source, error) {
	u, err := url.Parse(arg)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		b, err := readCheckpointFile(arg)
		return b, nil, err
	}
	client := &http.Client{Timeout: monitorTimeout}
	if caCert != "" {
		pem, err := os.ReadFile(caCert)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--cacert: no PEM certificate in %s", caCert)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/log/checkpoint")
	src := &httpSource{client: client, base: base}
	b, err := src.Checkpoint(cmd.Context())
	if err != nil {
		return nil, nil, e.tlsHint(err, "--cacert")
	}
	return b, src, nil
}

func (e *env) backupDrillCmd() *cobra.Command {
	var k restoreKeys
	var scratch string
	cmd := &cobra.Command{
		Use:   "drill DEST",
		Short: "Restore the newest backup into a scratch directory (or database), verify it, delete it; print recovery time and point",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStoreDir(args[0])
			if err != nil {
				return err
			}
			ids, keyFile, cleanup, err := k.resolve(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			p, done := e.byteBar()
			r := app.DrillBackup(cmd.Context(), st, app.DrillOptions{Identities: ids, KeyFile: keyFile, ScratchDir: scratch,
				Postgres: k.postgres, Progress: p, Limits: backup.Limits{MaxExpansion: k.expansion}})
			done()
			if r.Name != "" && r.Err == nil {
				fmt.Fprintf(e.stdout, "drilled %s: created %s, audit checkpoint size %d (authenticated manifest); %d resources, %d patients, %d audit events\n",
					r.Name, r.Created.Format(time.RFC3339), r.Checkpoint, r.Counts.Resources, r.Counts.Patients, r.Counts.AuditEvents)
			}
			if r.Err != nil {
				if r.Name != "" {
					return fmt.Errorf("drill of %s FAILED: %w", r.Name, r.Err)
				}
				return fmt.Errorf("drill FAILED: %w", r.Err)
			}
			fmt.Fprintf(e.stdout, "recovery time  %s (restore and verification)\n", r.RecoveryTime.Round(time.Millisecond))
			fmt.Fprintf(e.stdout, "recovery point %s (age of the newest backup)\n", r.RecoveryPoint.Round(time.Second))
			fmt.Fprintln(e.stdout, "OK: the newest backup restores and verifies; the scratch copy is deleted")
			return nil
		},
	}
	k.flags(cmd)
	cmd.Flags().StringVar(&scratch, "scratch", "", "where to make the scratch data directory (default: the system's temporary directory)")
	return cmd
}
