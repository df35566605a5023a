package app_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// entry is one file of a decrypted archive.
type entry struct {
	name string
	body []byte
}

// openArchive decrypts backup name of st with id and returns its entries
// (the manifest and seal included, in order).
func openArchive(t *testing.T, st backup.Store, name string, id age.Identity) []entry {
	t.Helper()
	rc, err := st.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	pt, err := age.Decrypt(rc, id)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(pt)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{hdr.Name, b})
	}
}

// sealMode is what a forger does with the manifest's seal.
type sealMode int

const (
	keepSeal  sealMode = iota // the real backup's seal (of the old manifest)
	dropSeal                  // no seal at all
	theirSeal                 // sealed with the forger's own deployment's KEK
)

// forge is the tester's attack: it holds the backup identity, decrypts a
// real backup, edits its entries, recomputes every hash of the manifest,
// encrypts again to the public recipient and stores it as as (with a
// correct .sha256 and .json).
func forge(t *testing.T, st backup.Store, name, as string, id *age.X25519Identity, edit func([]entry) []entry, seal sealMode, editManifest func(*backup.Manifest)) {
	t.Helper()
	ents := openArchive(t, st, name, id)
	var m backup.Manifest
	var files []entry
	var oldSeal []byte
	for _, e := range ents {
		switch e.name {
		case "manifest.json":
			var err error
			if m, err = backup.ParseManifest(e.body); err != nil {
				t.Fatal(err)
			}
		case "manifest.seal":
			oldSeal = e.body
		default:
			files = append(files, e)
		}
	}
	files = edit(files)
	m.Files = nil
	for _, e := range files {
		h := sha256.Sum256(e.body)
		m.Files = append(m.Files, backup.File{Name: e.name, Size: int64(len(e.body)), SHA256: hex.EncodeToString(h[:])})
	}
	if editManifest != nil {
		editManifest(&m)
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	switch seal {
	case keepSeal:
		files = append(files, entry{"manifest.json", mb}, entry{"manifest.seal", oldSeal})
	case dropSeal:
		files = append(files, entry{"manifest.json", mb})
	case theirSeal:
		p := filepath.Join(t.TempDir(), "their-kek.json")
		if err := keys.CreateKeyFile(p); err != nil {
			t.Fatal(err)
		}
		k, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(mb)
		s, err := k.SealBackupManifest(d[:])
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, entry{"manifest.json", mb}, entry{"manifest.seal", s})
	}
	var ct bytes.Buffer
	ew, err := age.Encrypt(&ct, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := zstd.NewWriter(ew)
	tw := tar.NewWriter(zw)
	for _, e := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.body)), Mode: 0o600, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(e.body)
	}
	_ = tw.Close()
	_ = zw.Close()
	_ = ew.Close()
	sum := sha256.Sum256(ct.Bytes())
	put := func(n string, b []byte) {
		t.Helper()
		if err := st.Put(t.Context(), n, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	put(as, ct.Bytes())
	put(as+backup.SumSuffix, []byte(hex.EncodeToString(sum[:])+"  "+as+"\n"))
	sb, _ := json.Marshal(m.Summary(as, int64(ct.Len()), hex.EncodeToString(sum[:])))
	put(as+backup.SummarySuffix, sb)
}

func withEntry(name string, body []byte) func([]entry) []entry {
	return func(es []entry) []entry {
		for i, e := range es {
			if e.name == name {
				es[i].body = body
				return es
			}
		}
		return append(es, entry{name, body})
	}
}

func plantTLSKey(t *testing.T, es []entry) []entry {
	t.Helper()
	for i, e := range es {
		if e.name == "data/phivault.json" {
			var doc map[string]any
			if err := json.Unmarshal(e.body, &doc); err != nil {
				t.Fatal(err)
			}
			doc["server"].(map[string]any)["tls_key"] = "/etc/shadow"
			es[i].body, _ = json.Marshal(doc)
		}
	}
	return es
}

// TestRestoreRefusesAForgedBackup is the tester's finding 1: a holder of
// the backup identity plants a permit-all policy or a configuration key
// in a real backup, recomputes the manifest and re-encrypts it. Restore,
// drill and verify --key-file refuse it whatever the forger does with
// the seal (keeps the old one, drops it, seals with their own KEK), and
// nothing is left in the target.
func TestRestoreRefusesAForgedBackup(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			f := newBackupFixture(t, driver)
			f.s.Create(t, patient("Real"))
			made := f.create(t)
			later := func(i int) string {
				c, _ := backup.IsBackupName(made.Name)
				return backup.NewName(c.Add(time.Duration(i) * time.Hour))
			}
			kek, ids, err := app.KeyFileChecker(t.Context(), f.c.Keys.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			permitAll := withEntry("data/policies/zz.cedar", []byte("permit(principal, action, resource);\n"))
			cases := []struct {
				name string
				edit func([]entry) []entry
				seal sealMode
			}{
				{"policy, old seal", permitAll, keepSeal},
				{"policy, no seal", permitAll, dropSeal},
				{"policy, their KEK", permitAll, theirSeal},
				{"tls_key, old seal", func(es []entry) []entry { return plantTLSKey(t, es) }, keepSeal},
				{"tls_key, their KEK", func(es []entry) []entry { return plantTLSKey(t, es) }, theirSeal},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					as := later(i + 1)
					// The forger keeps the manifest's time consistent with
					// the new name, so only the seal gives it away.
					c, _ := backup.IsBackupName(as)
					forge(t, f.st, made.Name, as, f.id, tc.edit, tc.seal, func(m *backup.Manifest) { m.Created = c })
					target := filepath.Join(t.TempDir(), "restored")
					_, err := f.restore(t, as, func(o *app.RestoreOptions) { o.DataDir = target })
					if !errors.Is(err, backup.ErrUnauthenticated) {
						t.Fatalf("restore of a forged backup: %v, want ErrUnauthenticated", err)
					}
					if _, serr := os.Stat(target); !errors.Is(serr, os.ErrNotExist) {
						t.Fatalf("the refused restore left %s", target)
					}
					_, err = backup.Verify(t.Context(), f.st, as, backup.VerifyOptions{Identities: []age.Identity{f.id}, Auth: kek, KeyIDs: ids})
					if !errors.Is(err, backup.ErrUnauthenticated) {
						t.Fatalf("verify --key-file of a forged backup: %v, want ErrUnauthenticated", err)
					}
					r := app.DrillBackup(t.Context(), f.st, app.DrillOptions{Identities: []age.Identity{f.id}, KeyFile: f.c.Keys.KeyFile,
						ScratchDir: t.TempDir(), Postgres: drillURL(driver, f)})
					if r.Name != as || !errors.Is(r.Err, backup.ErrUnauthenticated) {
						t.Fatalf("drill of a forged newest backup %s: %s %v", as, r.Name, r.Err)
					}
				})
			}
			// The real one still restores, and the report names what it
			// brings back beyond the defaults.
			for _, n := range []string{later(1), later(2), later(3), later(4), later(5)} {
				for _, s := range []string{"", backup.SumSuffix, backup.SummarySuffix} {
					_ = f.st.Delete(t.Context(), n+s)
				}
			}
			rep, err := f.restore(t, made.Name, nil)
			if err != nil {
				t.Fatalf("restoring the real backup: %v", err)
			}
			if len(rep.Policies) != 0 || !hasPrefix(rep.Config, "server.base_url = ") {
				t.Fatalf("restored overrides: policies %v, config %v", rep.Policies, rep.Config)
			}
		})
	}
}

func hasPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func drillURL(driver string, f *backupFixture) string {
	if driver == "postgres" {
		return f.c.Storage.PostgresURL
	}
	return ""
}

// TestRestoreRefusesARenamedBackup is finding 2: an older backup renamed
// to a newer name (with a summary edited to match) is what "newest"
// picks; restore and drill refuse it because its authenticated manifest
// says when it was made, and an edited summary alone is refused too.
func TestRestoreRefusesARenamedBackup(t *testing.T) {
	f := newBackupFixture(t, "sqlite")
	made := f.create(t)
	c, _ := backup.IsBackupName(made.Name)
	renamed := backup.NewName(c.Add(time.Hour))
	for _, s := range []string{"", backup.SumSuffix} {
		b, err := readAll(t, f.st, made.Name+s)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(made.Name), []byte(renamed))
		if err := f.st.Put(t.Context(), renamed+s, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	sum := made.Manifest.Summary(renamed, made.Size, made.SHA256)
	sum.Created = c.Add(time.Hour)
	sb, _ := json.Marshal(sum)
	if err := f.st.Put(t.Context(), renamed+backup.SummarySuffix, bytes.NewReader(sb)); err != nil {
		t.Fatal(err)
	}
	if n, _ := backup.Newest(t.Context(), f.st); n != renamed {
		t.Fatalf("newest is %s", n)
	}
	if _, err := f.restore(t, renamed, nil); !errors.Is(err, backup.ErrMislabelled) {
		t.Fatalf("restore of a renamed backup: %v, want ErrMislabelled", err)
	}
	r := app.DrillBackup(t.Context(), f.st, app.DrillOptions{Identities: []age.Identity{f.id}, KeyFile: f.c.Keys.KeyFile, ScratchDir: t.TempDir()})
	if !errors.Is(r.Err, backup.ErrMislabelled) {
		t.Fatalf("drill of a renamed newest backup: %v, want ErrMislabelled", r.Err)
	}
	for _, s := range []string{"", backup.SumSuffix, backup.SummarySuffix} {
		_ = f.st.Delete(t.Context(), renamed+s)
	}
	// The real name with an edited summary.
	sum = made.Manifest.Summary(made.Name, made.Size, made.SHA256)
	sum.Checkpoint.Size += 100
	sb, _ = json.Marshal(sum)
	_ = f.st.Delete(t.Context(), made.Name+backup.SummarySuffix)
	if err := f.st.Put(t.Context(), made.Name+backup.SummarySuffix, bytes.NewReader(sb)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.restore(t, made.Name, nil); !errors.Is(err, backup.ErrMislabelled) {
		t.Fatalf("restore with an edited summary: %v, want ErrMislabelled", err)
	}
	r = app.DrillBackup(t.Context(), f.st, app.DrillOptions{Identities: []age.Identity{f.id}, KeyFile: f.c.Keys.KeyFile, ScratchDir: t.TempDir()})
	if !errors.Is(r.Err, backup.ErrMislabelled) {
		t.Fatalf("drill with an edited summary: %v", r.Err)
	}
}

func readAll(t *testing.T, st backup.Store, name string) ([]byte, error) {
	t.Helper()
	rc, err := st.Get(t.Context(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestBackupIsAudited: App.CreateBackup (the CLI's create) records a
// backup event naming the backup, destination and host, and removes and
// reports what a killed backup left in the data directory.
func TestBackupIsAudited(t *testing.T) {
	f := newBackupFixture(t, "sqlite")
	stale := filepath.Join(filepath.Dir(f.c.Storage.SQLitePath), ".backup-123.db")
	if err := os.WriteFile(stale, []byte("plaintext snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	made, err := f.s.App.CreateBackup(t.Context(), f.st, backup.CreateOptions{Recipients: []age.Recipient{f.id.Recipient()}}, audit.Agent{Client: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if len(made.Stale) != 1 || made.Stale[0] != stale {
		t.Fatalf("stale files reported: %v", made.Stale)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stale snapshot is still there")
	}
	a := f.s.App
	var found *audit.Event
	err = a.Store.ScanAudit(t.Context(), 0, func(_ int64, r storage.AuditRecord) error {
		b, err := a.Log.Open(r)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		if ev.Action == audit.ActionBackup {
			found = &ev
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == nil || found.Outcome != audit.OutcomeSuccess || len(found.Entities) != 1 || found.Entities[0] != "Backup/"+made.Name ||
		!strings.Contains(strings.Join(found.Policies, " "), "destination="+f.st.String()) || !strings.Contains(strings.Join(found.Policies, " "), "host=") || !strings.Contains(strings.Join(found.Policies, " "), "operator=") {
		t.Fatalf("backup audit event: %+v", found)
	}
}

// TestRestoreIntoANonEmptyPostgres (finding 6): a target database with a
// table is refused as not empty, not as a corrupt archive.
func TestRestoreIntoANonEmptyPostgres(t *testing.T) {
	f := newBackupFixture(t, "postgres")
	made := f.create(t)
	target := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `CREATE TABLE someone_elses (id int)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	_, err = f.restore(t, made.Name, func(o *app.RestoreOptions) { o.Postgres = target })
	if !errors.Is(err, backup.ErrNotEmpty) || errors.Is(err, backup.ErrCorrupt) || strings.Contains(err.Error(), "manifest") {
		t.Fatalf("restore into a non-empty database: %v, want ErrNotEmpty alone", err)
	}
}
