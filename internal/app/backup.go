package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/ledger"
	"github.com/phivault/phivault/internal/storage"
)

// Backups (issue 17, ADR 0048): the backup package takes, checks and
// restores archives; here they meet an instance's configuration (what
// to snapshot, which files of the data directory go with it) and, after
// a restore, the verification of the restored instance with the same
// code as "phivault verify" and "audit verify".

// BackupSource returns the database of c as a backup source.
func BackupSource(c config.Config) backup.Source {
	if c.Storage.Driver == "postgres" {
		return backup.PostgresSource{URL: c.Storage.PostgresURL}
	}
	return backup.SQLiteSource{Path: c.Storage.SQLitePath, BusyTimeout: c.Timeouts.Lock.D()}
}

// BackupFiles lists the files of c's data directory a backup carries:
// the configuration, the audit verifier key, the policy overrides and
// the TLS files. Never the key file or the checkpoint kept beside it,
// nor anything outside the data directory.
func BackupFiles(c config.Config) ([]backup.DataFile, error) {
	root, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	exclude := []string{c.Keys.KeyFile, c.Audit.CheckpointFile, c.Storage.SQLitePath}
	var out []backup.DataFile
	add := func(p string) {
		abs, err := filepath.Abs(p)
		if err != nil || slices.Contains(exclude, abs) {
			return
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.HasPrefix(rel, "keys"+string(filepath.Separator)) {
			return
		}
		if info, err := os.Lstat(abs); err != nil || !info.Mode().IsRegular() {
			return
		}
		out = append(out, backup.DataFile{Name: filepath.ToSlash(rel), Path: abs})
	}
	add(filepath.Join(root, config.FileName))
	// The verifier key is public: always carried, as log-verifier.pub
	// wherever it lives (c's paths are resolved against the working
	// directory, not root), and the restored configuration points at it.
	if vk := c.Audit.VerifierKey; vk != "" {
		if p, err := filepath.Abs(vk); err == nil {
			if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() {
				out = append(out, backup.DataFile{Name: restoredVerifierKey, Path: p})
				exclude = append(exclude, p)
			}
		}
	}
	for _, dir := range []string{PolicyDir, "tls"} {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, e := range ents {
			add(filepath.Join(root, dir, e.Name()))
		}
	}
	return out, nil
}

// restoredVerifierKey is the name a backup carries the audit log's
// verifier key under, and where a restored configuration points.
const restoredVerifierKey = "log-verifier.pub"

// CreateBackup takes a backup of the instance c configures into dst. It
// holds the data directory shared (ADR 0037), so it runs beside a
// server (whose SQLite database it snapshots through a reader of its
// own) but not beside a direct import. Without o.Sealer it opens the KEK
// c names (the key file or KMS) to seal the manifest with. It records
// nothing in the audit log: App.CreateBackup does.
func CreateBackup(ctx context.Context, c config.Config, dst backup.Store, o backup.CreateOptions) (backup.Created, error) {
	release, err := HoldDataDir(c, false, "backup create")
	if err != nil {
		return backup.Created{}, err
	}
	defer release()
	if o.Sealer == nil {
		kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: c.Keys.KeyFile, URI: c.Keys.KMSURI, Token: c.Keys.KMSToken()}, &http.Client{Timeout: kmsTimeout})
		if err != nil {
			return backup.Created{}, fmt.Errorf("opening the key-encryption key to seal the backup (keys.key_file / keys.kms_uri): %w", err)
		}
		o.Sealer = kek
	}
	return createBackup(ctx, c, dst, o)
}

func createBackup(ctx context.Context, c config.Config, dst backup.Store, o backup.CreateOptions) (backup.Created, error) {
	stale, err := RemoveStaleBackupFiles(c, dst)
	if err != nil {
		return backup.Created{}, err
	}
	files, err := BackupFiles(c)
	if err != nil {
		return backup.Created{}, err
	}
	o.Files = append(files, o.Files...)
	if o.Version == "" {
		o.Version = Version
	}
	made, err := backup.Create(ctx, dst, BackupSource(c), o)
	made.Stale = stale
	return made, err
}

// RemoveStaleBackupFiles removes what killed backups left behind: the
// plaintext SQLite snapshots beside c's database and, when dst is a
// directory store, its partial objects (backup.RemoveStale). A running
// backup's files are never touched. It returns the paths removed.
func RemoveStaleBackupFiles(c config.Config, dst backup.Store) ([]string, error) {
	var out []string
	if c.Storage.Driver != "postgres" && c.Storage.SQLitePath != "" {
		dir := filepath.Dir(c.Storage.SQLitePath)
		names, err := backup.RemoveStale(dir)
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		if err != nil {
			return out, err
		}
	}
	if ds, ok := dst.(interface{ RemoveStale() ([]string, error) }); ok {
		names, err := ds.RemoveStale()
		for _, n := range names {
			out = append(out, dst.String()+"/"+n)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// CreateBackup takes a backup of a into dst (the caller holds the data
// directory, as openApp and serve do), sealed with a's KEK, and records
// it in the audit log (backup, Entities "Backup/<name>", Policies the
// destination, size, host and operating-system user; never a secret), a
// failure too.
func (a *App) CreateBackup(ctx context.Context, dst backup.Store, o backup.CreateOptions, agent audit.Agent) (backup.Created, error) {
	o.Sealer = a.Keys.KEK()
	made, err := createBackup(ctx, a.Config, dst, o)
	ev := audit.Event{Time: time.Now().UTC(), Action: audit.ActionBackup, Outcome: audit.OutcomeSuccess, Agent: agent,
		Policies: []string{"destination=" + dst.String(), "bytes=" + strconv.FormatInt(made.Size, 10), "host=" + hostName(), "operator=" + osUser()}}
	if made.Name != "" {
		ev.Entities = []string{"Backup/" + made.Name}
	}
	if err != nil {
		ev.Outcome = audit.OutcomeError
	}
	aerr := a.Store.Update(ctx, func(tx storage.Tx) error {
		rec, err := a.Log.Seal(ev)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return made, err
	}
	if aerr != nil {
		return made, fmt.Errorf("auditing the backup %s: %w", made.Name, aerr)
	}
	return made, nil
}

// osUser is the operating-system account running the command (the
// operator of an offline command), or "unknown".
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}

// KeyFileIDs returns the KEK key ids in a key file (for VerifyOptions
// and RestoreOptions).
func KeyFileIDs(ctx context.Context, path string) ([]uint32, error) {
	k, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: path}, nil)
	if err != nil {
		return nil, err
	}
	return k.KeyIDs(), nil
}

// KeyFileChecker opens a key file as what checks a backup's manifest
// seal (backup.VerifyOptions.Auth), and returns its KEK key ids.
func KeyFileChecker(ctx context.Context, path string) (backup.ManifestChecker, []uint32, error) {
	k, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: path}, nil)
	if err != nil {
		return nil, nil, err
	}
	return k, k.KeyIDs(), nil
}

// RestoreOptions configures RestoreBackup.
type RestoreOptions struct {
	Identities backup.Identities
	// KeyFile is the key file to restore with (the current one, or one
	// rebuilt from an escrow); it is copied into DataDir/keys/kek.json.
	KeyFile string
	// DataDir is the new data directory (missing or empty).
	DataDir string
	// Postgres is an empty database for a PostgreSQL backup.
	Postgres string
	// Checkpoints are signed checkpoints the restored log is checked
	// against (a file the operator kept, the server's /checkpoint): one
	// no larger than the restored log must be a prefix of it, else the
	// history was rolled back or forked; a larger one marks the recovery
	// point (RestoreReport.Beyond).
	Checkpoints [][]byte
	// Tiles, when set, proves that each larger checkpoint extends the
	// restored log (C2SP tlog-tiles, read from where it was published).
	Tiles merkle.Source
	// Limits bound the archive's decompressed size (zero: the defaults).
	Limits   backup.Limits
	Progress backup.Progress
	Logger   *slog.Logger
}

// RestoreReport is the outcome of RestoreBackup.
type RestoreReport struct {
	Restored backup.Restored
	// Policies are the policy override files restored (policies/*.cedar):
	// each changes who may read what, so the operator must see them.
	Policies []string
	// Config are the restored configuration's keys whose values differ
	// from a fresh data directory's, "section.key = value", sorted.
	Config []string
	// Verify is "phivault verify" on the restored instance (the audit
	// log against the manifest's checkpoint, then the data against it).
	Verify ledger.VerifyReport
	// Size and Root are the restored log's signed tree head.
	Size int64
	Root string
	// Matched are the given checkpoints the restored log extends.
	Matched []merkle.Checkpoint
	// Beyond are the given checkpoints larger than the restored log:
	// events after the backup, not in it. Proven says whether tiles
	// proved each extends the restored log.
	Beyond []merkle.Checkpoint
	Proven []bool
}

// ErrRestoreVerify means the restored instance does not verify: the
// report says what differs.
var ErrRestoreVerify = errors.New("the restored instance does not verify")

// RestoreBackup restores backup name from st into a new data directory
// (and database), makes it a data directory of its own (the key file
// copied into keys/, the manifest's checkpoint kept beside it, paths in
// the configuration pointed at the new directory and database), then
// opens it and verifies it as "phivault verify" and "audit verify" do,
// and checks it against o.Checkpoints. The restored directory is kept
// even when verification fails (the report says why; nothing is served
// from it until the operator starts a server).
func RestoreBackup(ctx context.Context, st backup.Store, name string, o RestoreOptions) (RestoreReport, error) {
	var rep RestoreReport
	if o.KeyFile == "" {
		return rep, errors.New("restore needs the key file (--key-file): it is never in a backup")
	}
	kek, ids, err := KeyFileChecker(ctx, o.KeyFile)
	if err != nil {
		return rep, err
	}
	r, err := backup.Restore(ctx, st, name, backup.RestoreOptions{Identities: o.Identities, KeyIDs: ids, Auth: kek,
		Limits: o.Limits, DataDir: o.DataDir, Postgres: o.Postgres, Progress: o.Progress})
	if err != nil {
		return rep, err
	}
	rep.Restored = r
	rep.Policies, rep.Config = restoredOverrides(r)
	if err := adoptRestored(r, o); err != nil {
		return rep, err
	}
	if err := verifyRestored(ctx, &rep, o); err != nil {
		return rep, err
	}
	return rep, nil
}

// restoredKeyFile is where a restored directory keeps its key file.
const restoredKeyFile = "keys/kek.json"

// adoptRestored rewrites the restored configuration for its new place
// and copies in the key file and the manifest's checkpoint.
func adoptRestored(r backup.Restored, o RestoreOptions) error {
	cfgPath := filepath.Join(r.DataDir, config.FileName)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("the backup holds no %s: %w", config.FileName, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("the backup's %s: %w", config.FileName, err)
	}
	section := func(k string) map[string]any {
		m, _ := doc[k].(map[string]any)
		if m == nil {
			m = map[string]any{}
			doc[k] = m
		}
		return m
	}
	ks := section("keys")
	ks["key_file"], ks["kms_uri"] = restoredKeyFile, ""
	stg := section("storage")
	if r.Manifest.Engine == backup.EnginePostgres {
		stg["driver"], stg["postgres_url"] = "postgres", withoutPassword(o.Postgres)
	} else {
		stg["driver"], stg["sqlite_path"] = "sqlite", "phivault.db"
	}
	au := section("audit")
	// The kept checkpoint goes beside the new key file; the witnesses'
	// files belong to the old deployment (and are newer than the backup).
	delete(au, "checkpoint_file")
	delete(au, "witness_checkpoints")
	if _, err := os.Stat(filepath.Join(r.DataDir, restoredVerifierKey)); err == nil {
		au["verifier_key"] = restoredVerifierKey
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, append(out, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.DataDir, "keys"), 0o700); err != nil {
		return err
	}
	if err := copyKeyFile(o.KeyFile, filepath.Join(r.DataDir, restoredKeyFile)); err != nil {
		return err
	}
	if cp := r.Manifest.Checkpoint; cp.Size > 0 {
		anchor := merkle.FileAnchor{Path: filepath.Join(r.DataDir, "keys", config.DefaultCheckpointFile)}
		if err := anchor.Save([]byte(cp.Note)); err != nil {
			return err
		}
	}
	return nil
}

func copyKeyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copying the key file: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copying the key file: %w", err)
	}
	if _, err := io.Copy(dst, io.LimitReader(src, 1<<20)); err != nil {
		dst.Close()
		return fmt.Errorf("copying the key file: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("copying the key file: %w", err)
	}
	return dst.Close()
}

// verifyRestored opens the restored instance and verifies it.
func verifyRestored(ctx context.Context, rep *RestoreReport, o RestoreOptions) error {
	// No PHIVAULT_* variable of this process applies to the restored
	// directory (a drill inside a server must not open the server's
	// database); its KEK is the copied key file, never a KMS.
	noEnv := func(string) string { return "" }
	var ov config.Overrides
	if rep.Restored.Manifest.Engine == backup.EnginePostgres {
		ov.PostgresURL = o.Postgres
	}
	c, err := config.Load(rep.Restored.DataDir, noEnv, ov)
	if err != nil {
		return fmt.Errorf("loading the restored configuration: %w", err)
	}
	a, err := Open(ctx, c, o.Logger, HoldingDataDir(true, "backup restore"), ScanningReads())
	if err != nil {
		return fmt.Errorf("opening the restored instance: %w", err)
	}
	defer a.Close()
	var n int64
	rep.Verify, err = a.Ledger().Verify(ctx, func() {
		n++
		if n%1024 == 0 && o.Progress != nil {
			o.Progress("verify", n, -1)
		}
	})
	if err != nil {
		return fmt.Errorf("verifying the restored instance: %w", err)
	}
	if !rep.Verify.OK() {
		n := len(rep.Verify.Data.Problems) + int(rep.Verify.Data.More)
		if n == 0 && rep.Verify.LogDivergence != "" {
			return fmt.Errorf("%w: the audit log diverges: %s", ErrRestoreVerify, rep.Verify.LogDivergence)
		}
		return fmt.Errorf("%w: %d problem(s) in the data%s", ErrRestoreVerify, n, divergence(rep.Verify.LogDivergence))
	}
	head, err := a.Transparency().Reader().Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("reading the restored log's checkpoint: %w", err)
	}
	rep.Size, rep.Root = head.Size, hex.EncodeToString(head.Root)
	if m := rep.Restored.Manifest.Checkpoint; head.Size < m.Size {
		return fmt.Errorf("%w: the restored log has %d leaves, the backup's checkpoint %d", ErrRestoreVerify, head.Size, m.Size)
	}
	return checkCheckpoints(ctx, a, rep, o)
}

func divergence(d string) string {
	if d == "" {
		return ""
	}
	return "; audit log: " + d
}

// checkCheckpoints checks the restored log against o.Checkpoints.
func checkCheckpoints(ctx context.Context, a *App, rep *RestoreReport, o RestoreOptions) error {
	t := a.Transparency()
	v, err := merkle.NewVerifier(t.VerifierKey())
	if err != nil {
		return err
	}
	var within [][]byte
	for _, raw := range o.Checkpoints {
		c, err := merkle.OpenCheckpoint(raw, t.Origin(), v)
		if err != nil {
			return fmt.Errorf("%w: a given checkpoint is not of this log: %v", ErrRestoreVerify, err)
		}
		if c.Size <= rep.Size {
			within = append(within, raw)
			rep.Matched = append(rep.Matched, c)
			continue
		}
		rep.Beyond = append(rep.Beyond, c)
	}
	if len(within) > 0 {
		if _, err := t.VerifyWith(ctx, t.VerifierKey(), nil, within...); err != nil {
			return fmt.Errorf("%w: the restored log does not extend a given checkpoint (history rolled back or forked): %v", ErrRestoreVerify, err)
		}
	}
	rep.Proven = make([]bool, len(rep.Beyond))
	if o.Tiles == nil {
		return nil
	}
	head, err := t.Reader().Checkpoint(ctx)
	if err != nil {
		return err
	}
	prev := merkle.MonitorState{Origin: t.Origin(), Size: head.Size, Checkpoint: string(head.Note)}
	copy(prev.Root[:], head.Root)
	mon := merkle.NewMonitor(o.Tiles, t.Origin(), v)
	for i, c := range rep.Beyond {
		if _, err := mon.Advance(ctx, &prev, c); err != nil {
			if errors.Is(err, merkle.ErrRewrite) || errors.Is(err, merkle.ErrFork) || errors.Is(err, merkle.ErrRollback) {
				return fmt.Errorf("%w: the published log of size %d does not extend the restored one: %v", ErrRestoreVerify, c.Size, err)
			}
			return fmt.Errorf("proving the published log extends the restored one: %w", err)
		}
		rep.Proven[i] = true
	}
	return nil
}

// DrillOptions configures DrillBackup.
type DrillOptions struct {
	Identities backup.Identities
	KeyFile    string
	// ScratchDir is where the scratch data directory is made (and
	// removed); default os.TempDir().
	ScratchDir string
	// Postgres, for a PostgreSQL backup, is a URL whose user may create
	// databases: the drill creates a scratch database beside it, restores
	// into it and drops it.
	Postgres string
	Now      func() time.Time
	// Limits bound the archive's decompressed size (zero: the defaults).
	Limits   backup.Limits
	Progress backup.Progress
	Logger   *slog.Logger
}

// DrillBackup restores the newest backup of st into a scratch data
// directory (and database), verifies it as RestoreBackup does, removes
// the scratch, and returns what it took: the recovery time (restore and
// verification) and the recovery point (the backup's age at the start).
// It never returns an error on its own: DrillResult.Err says how the
// drill failed, for the caller to print or record.
func DrillBackup(ctx context.Context, st backup.Store, o DrillOptions) (res backup.DrillResult) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	res.Started = now().UTC()
	defer func() { res.Finished = now().UTC(); res.RecoveryTime = res.Finished.Sub(res.Started) }()
	name, err := backup.Newest(ctx, st)
	if err != nil {
		res.Err = err
		return res
	}
	res.Name = name
	if t, ok := backup.IsBackupName(name); ok {
		res.RecoveryPoint = res.Started.Sub(t)
	}
	scratch, err := os.MkdirTemp(o.ScratchDir, "phivault-drill-*")
	if err != nil {
		res.Err = fmt.Errorf("drill: %w", err)
		return res
	}
	defer os.RemoveAll(scratch)
	ro := RestoreOptions{Identities: o.Identities, KeyFile: o.KeyFile, DataDir: filepath.Join(scratch, "data"), Limits: o.Limits,
		Progress: o.Progress, Logger: o.Logger}
	// A scratch database only for a PostgreSQL backup (the summary says
	// which; without one, make it and let the restore decide).
	pgBackup := true
	if s, err := backup.ReadSummary(ctx, st, name); err == nil {
		pgBackup = s.Engine == backup.EnginePostgres
	}
	if o.Postgres != "" && pgBackup {
		url, drop, err := scratchDatabase(ctx, o.Postgres)
		if err != nil {
			res.Err = err
			return res
		}
		defer drop()
		ro.Postgres = url
	}
	rep, err := RestoreBackup(ctx, st, name, ro)
	res.Counts = rep.Restored.Manifest.Counts
	if m := rep.Restored.Manifest; rep.Restored.Name != "" {
		// The manifest's time (its seal checked, the name matching it),
		// not the name's, is the recovery point.
		res.Created, res.Checkpoint = m.Created, m.Checkpoint.Size
		res.RecoveryPoint = res.Started.Sub(m.Created)
	}
	res.Err = err
	return res
}

// scratchDatabase creates an empty database beside the one url names and
// returns its URL and how to drop it.
func scratchDatabase(ctx context.Context, u string) (string, func(), error) {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "", nil, errors.New("drill: invalid PostgreSQL URL")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("drill: connecting to PostgreSQL: %w", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "phivault_drill_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize()); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("drill: creating a scratch database: %w", err)
	}
	drop := func() {
		dctx := context.WithoutCancel(ctx)
		_, _ = conn.Exec(dctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{db}.Sanitize()+` WITH (FORCE)`)
		conn.Close(dctx)
	}
	return withDatabase(u, db), drop, nil
}

// withDatabase returns the connection string u naming database db.
func withDatabase(u, db string) string {
	if p, err := url.Parse(u); err == nil && (p.Scheme == "postgres" || p.Scheme == "postgresql") {
		p.Path = "/" + db
		return p.String()
	}
	return u + " dbname=" + db
}

// withoutPassword drops a URL's password (the configuration never holds
// one: PGPASSWORD or .pgpass gives it).
func withoutPassword(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		p.User = url.User(p.User.Username())
		return p.String()
	}
	return u
}

// maxShownValue bounds a configuration value printed after a restore.
const maxShownValue = 120

// restoredOverrides lists what in the restored data directory changes
// the instance's behaviour from a fresh one's: the policy override files
// and the configuration keys whose values differ from config.Default.
// The manifest's seal proves the deployment's KEK holder made the
// backup; these lists let the operator see what it brings back.
func restoredOverrides(r backup.Restored) (policies, cfg []string) {
	for _, f := range r.Manifest.Files {
		if rel, ok := strings.CutPrefix(f.Name, "data/"+PolicyDir+"/"); ok {
			policies = append(policies, PolicyDir+"/"+rel)
		}
	}
	b, err := os.ReadFile(filepath.Join(r.DataDir, config.FileName))
	if err != nil {
		return policies, nil
	}
	var got map[string]any
	if json.Unmarshal(b, &got) != nil {
		return policies, []string{"(" + config.FileName + " does not parse)"}
	}
	var def map[string]any
	db, _ := json.Marshal(config.Default(""))
	_ = json.Unmarshal(db, &def)
	want := map[string]string{}
	flattenJSON("", def, want)
	have := map[string]string{}
	flattenJSON("", got, have)
	for k, v := range have {
		if w, ok := want[k]; (ok && w == v) || (!ok && isZeroJSON(v)) {
			continue
		}
		if len(v) > maxShownValue {
			v = v[:maxShownValue] + "…"
		}
		cfg = append(cfg, k+" = "+v)
	}
	slices.Sort(cfg)
	return policies, cfg
}

// flattenJSON writes v's leaves into out as "a.b.c" -> JSON text.
func flattenJSON(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok && (len(m) > 0 || prefix == "") {
		for k, x := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flattenJSON(key, x, out)
		}
		return
	}
	b, _ := json.Marshal(v)
	out[prefix] = string(b)
}

func isZeroJSON(v string) bool {
	switch v {
	case `""`, "0", "false", "null", "[]", "{}":
		return true
	}
	return false
}
