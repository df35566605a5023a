package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// backupFixture is a running server with its configuration written (as
// init writes it), a backup store and an age identity.
type backupFixture struct {
	s     *apitest.Server
	c     config.Config
	st    *backup.DirStore
	id    *age.X25519Identity
	other *age.X25519Identity
}

func newBackupFixture(t *testing.T, driver string) *backupFixture {
	t.Helper()
	s := apitest.Start(t, driver)
	if err := config.Write(s.App.Config); err != nil {
		t.Fatal(err)
	}
	st, err := backup.NewDirStore(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	return &backupFixture{s: s, c: s.App.Config, st: st, id: id, other: other}
}

func (f *backupFixture) create(t *testing.T) backup.Created {
	t.Helper()
	made, err := app.CreateBackup(t.Context(), f.c, f.st, backup.CreateOptions{Recipients: []age.Recipient{f.id.Recipient()}})
	if err != nil {
		t.Fatalf("creating a backup: %v", err)
	}
	return made
}

func (f *backupFixture) restore(t *testing.T, name string, extra func(*app.RestoreOptions)) (app.RestoreReport, error) {
	t.Helper()
	o := app.RestoreOptions{Identities: []age.Identity{f.id}, KeyFile: f.c.Keys.KeyFile,
		DataDir: filepath.Join(t.TempDir(), "restored"), Logger: slog.New(slog.DiscardHandler)}
	if f.s.Driver == "postgres" {
		o.Postgres = pgtest.NewDatabase(t)
	}
	if extra != nil {
		extra(&o)
	}
	return app.RestoreBackup(t.Context(), f.st, name, o)
}

func patient(family string) map[string]any {
	return map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}}
}

// TestBackupWhileServing takes a backup while clients write, restores it
// into a new data directory (and database), verifies it and reads a
// resource back through the restored instance, on both engines.
func TestBackupWhileServing(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			f := newBackupFixture(t, driver)
			first := f.s.Create(t, patient("Before"))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := f.s.Send(context.Background(), "POST", "/fhir/Patient", patient("During"), nil); err != nil {
						return
					}
				}
			}()
			made := f.create(t)
			close(stop)
			wg.Wait()
			m := made.Manifest
			if m.Engine != driver || m.Counts.Patients < 1 || m.Checkpoint.Size < 1 || len(m.KEKIDs) == 0 {
				t.Fatalf("manifest %+v", m)
			}

			// Verify: hash only, then everything.
			r, err := backup.Verify(t.Context(), f.st, made.Name, backup.VerifyOptions{})
			if err != nil || r.Decrypted {
				t.Fatalf("verify without identity: %+v %v", r, err)
			}
			ids, err := app.KeyFileIDs(t.Context(), f.c.Keys.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			r, err = backup.Verify(t.Context(), f.st, made.Name, backup.VerifyOptions{Identities: []age.Identity{f.id}, KeyIDs: ids})
			if err != nil || !r.Decrypted || len(r.MissingKEKIDs) != 0 || r.SummaryMismatch != "" {
				t.Fatalf("verify: %+v %v", r, err)
			}
			if _, err := backup.Verify(t.Context(), f.st, made.Name, backup.VerifyOptions{Identities: []age.Identity{f.other}}); !errors.Is(err, backup.ErrWrongIdentity) {
				t.Fatalf("verify with another identity: %v, want ErrWrongIdentity", err)
			}

			rep, err := f.restore(t, made.Name, nil)
			if err != nil {
				t.Fatalf("restore: %v (%+v)", err, rep.Verify)
			}
			if rep.Size < m.Checkpoint.Size || !rep.Verify.OK() {
				t.Fatalf("restored log %d < %d or not OK", rep.Size, m.Checkpoint.Size)
			}
			readBack(t, f.s, rep.Restored.DataDir, first, rep)
		})
	}
}

// readBack opens the restored instance and reads id through its API with
// the original server's token (tokens are data: they come back too).
func readBack(t *testing.T, s *apitest.Server, dir, id string, rep app.RestoreReport) {
	t.Helper()
	o := config.Overrides{}
	if rep.Restored.Manifest.Engine == backup.EnginePostgres {
		o.PostgresURL = restoredPG(t, dir)
	}
	c, err := config.Load(dir, func(string) string { return "" }, o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("opening the restored instance: %v", err)
	}
	defer a.Close()
	ts := httptest.NewTLSServer(a.Handler())
	defer ts.Close()
	r := apitest.Attach(s, ts.URL, a, ts.Client()).Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, 200)
	if !strings.Contains(r.String(), "Before") {
		t.Fatalf("restored Patient: %s", r.String())
	}
}

// restoredPG reads the database URL the restore wrote (no password: the
// test server trusts local connections).
func restoredPG(t *testing.T, dir string) string {
	t.Helper()
	c, err := config.Load(dir, func(string) string { return "" }, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Storage.PostgresURL
}

// TestBackupRefusals: a tampered archive, a non-empty target, a key file
// without the backup's KEK keys.
func TestBackupRefusals(t *testing.T) {
	f := newBackupFixture(t, "sqlite")
	f.s.Create(t, patient("Tamper"))
	made := f.create(t)

	dir := filepath.Join(t.TempDir(), "full")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "something"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.restore(t, made.Name, func(o *app.RestoreOptions) { o.DataDir = dir }); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a non-empty directory: %v, want ErrNotEmpty", err)
	}

	// An altered plaintext summary is caught against the manifest.
	sum := filepath.Join(f.st.String(), made.Name+backup.SummarySuffix)
	sb, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sum, []byte(strings.Replace(string(sb), `"engine": "sqlite"`, `"engine": "postgres"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := backup.Verify(t.Context(), f.st, made.Name, backup.VerifyOptions{Identities: backup.Identities{f.id}}); err != nil || r.SummaryMismatch == "" {
		t.Fatalf("verify with an altered summary: %+v %v, want a mismatch", r, err)
	}

	path := filepath.Join(f.st.String(), made.Name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]age.Identity{nil, {f.id}} {
		_, err := backup.Verify(t.Context(), f.st, made.Name, backup.VerifyOptions{Identities: ids})
		if !errors.Is(err, backup.ErrChecksum) || !strings.Contains(err.Error(), "tampered") {
			t.Fatalf("verify a flipped byte (identities %d): %v, want ErrChecksum", len(ids), err)
		}
	}
	if _, err := f.restore(t, made.Name, nil); !errors.Is(err, backup.ErrChecksum) {
		t.Fatalf("restore a flipped byte: %v, want ErrChecksum", err)
	}
}

// readerSource serves a log's checkpoint and tiles from its reader, as
// the server's /log endpoints do.
type readerSource struct{ r *merkle.Reader }

func (s readerSource) Checkpoint(ctx context.Context) ([]byte, error) {
	c, err := s.r.Checkpoint(ctx)
	return c.Note, err
}

func (s readerSource) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) { return s.r.Tile(ctx, t) }

// TestRestoreProvesTheRecoveryPoint: the server goes on after a backup;
// its newer checkpoint is the recovery point, and its tiles prove that
// its log extends the restored one.
func TestRestoreProvesTheRecoveryPoint(t *testing.T) {
	f := newBackupFixture(t, "sqlite")
	f.s.Create(t, patient("Kept"))
	made := f.create(t)
	for range 3 {
		f.s.Create(t, patient("Later"))
	}
	tl := f.s.App.Transparency()
	if _, err := tl.Integrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	later, err := tl.Reader().Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.restore(t, made.Name, func(o *app.RestoreOptions) {
		o.Checkpoints = [][]byte{later.Note}
		o.Tiles = readerSource{tl.Reader()}
	})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if len(rep.Beyond) != 1 || rep.Beyond[0].Size != later.Size || !rep.Proven[0] || later.Size <= rep.Size {
		t.Fatalf("recovery point: beyond %+v proven %v, restored size %d, later %d", rep.Beyond, rep.Proven, rep.Size, later.Size)
	}
}
