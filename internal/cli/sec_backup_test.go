package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// secAge makes an age identity file and returns it and its recipient.
func secAge(t *testing.T) (idFile, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile = filepath.Join(t.TempDir(), "backup-identity.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return idFile, id.Recipient().String()
}

var secBackupNameRE = regexp.MustCompile(`phivault-\d{8}T[0-9.]+Z\.age`)

// secBackup runs "backup create" and returns the backup's path.
func secBackup(t *testing.T, dir, recipient, dest string) string {
	t.Helper()
	out := secMustRun(t, "backup", "create", "--data", dir, "--recipient", recipient, "--out", dest).stdout
	name := secBackupNameRE.FindString(out)
	if name == "" {
		t.Fatalf("backup create printed no name:\n%s", out)
	}
	return filepath.Join(dest, name)
}

// TestBackupDrillAfterLosingTheDataDirectory is issue 17's "done when"
// on both engines: a backup and a key escrow are taken, the data
// directory (key file included) is deleted, and a drill and a restore
// from the backup and the escrow alone succeed and verify. Along the way:
// list, verify with and without the identity, a wrong identity, a
// non-empty target.
func TestBackupDrillAfterLosingTheDataDirectory(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secImportSynth(t, 3, drv.initArgs(t)...)
			idFile, rcpt := secAge(t)
			otherID, _ := secAge(t)
			dest := filepath.Join(t.TempDir(), "backups")
			path := secBackup(t, dir, rcpt, dest)

			out := secMustRun(t, "backup", "list", dest).stdout
			if !strings.Contains(out, filepath.Base(path)) || !strings.Contains(out, drv.name) {
				t.Fatalf("backup list:\n%s", out)
			}
			out = secMustRun(t, "backup", "verify", path).stdout
			if !strings.Contains(out, "NOT DECRYPTED: only the checksum was checked") {
				t.Fatalf("verify without identity:\n%s", out)
			}
			kek := secConfig(t, dir).Keys.KeyFile
			out = secMustRun(t, "backup", "verify", "--identity", idFile, "--key-file", kek, path).stdout
			if !strings.Contains(out, "\nOK\n") || !strings.Contains(out, "restorable with") {
				t.Fatalf("verify with identity:\n%s", out)
			}
			if drv.name == "sqlite" && !strings.Contains(out, "integrity_check ok") {
				t.Fatalf("verify did not check the SQLite snapshot:\n%s", out)
			}
			if r := secRun(t, "backup", "verify", "--identity", otherID, path); r.code != 1 || !strings.Contains(r.stderr, "none of the identities can decrypt it") {
				t.Fatalf("verify with another identity: exit %d\n%s", r.code, r.stderr)
			}

			escrow := filepath.Join(t.TempDir(), "kek.escrow")
			out = secMustRun(t, "keys", "escrow", "--data", dir, "--recipient", rcpt, "--out", escrow).stdout
			if !strings.Contains(out, "escrowed KEK key(s)") {
				t.Fatalf("keys escrow:\n%s", out)
			}

			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			drill := []string{"backup", "drill", "--identity", idFile, "--escrow", escrow, dest}
			restore := []string{"backup", "restore", "--identity", idFile, "--escrow", escrow}
			if drv.name == "postgres" {
				drill = append(drill, "--postgres", os.Getenv(pgtest.EnvURL))
				if drill[len(drill)-1] == "" {
					drill[len(drill)-1] = pgtest.DefaultURL
				}
				restore = append(restore, "--postgres", pgtest.NewDatabase(t))
			}
			out = secMustRun(t, drill...).stdout
			if !strings.Contains(out, "recovery time") || !strings.Contains(out, "recovery point") || !strings.Contains(out, "OK: the newest backup restores and verifies") {
				t.Fatalf("drill:\n%s", out)
			}
			restored := filepath.Join(t.TempDir(), "restored")
			out = secMustRun(t, append(restore, "--data", restored, path)...).stdout
			if !strings.Contains(out, "OK: restored") {
				t.Fatalf("restore:\n%s", out)
			}
			if drv.name == "postgres" {
				t.Setenv("PHIVAULT_POSTGRES", secConfig(t, restored).Storage.PostgresURL)
			}
			secMustRun(t, "verify", "--data", restored)
			secMustRun(t, "audit", "verify", "--data", restored)
			if r := secRun(t, append(restore, "--data", restored, path)...); r.code == 0 || !strings.Contains(r.stderr, "not empty") {
				t.Fatalf("restore into a non-empty directory: exit %d\n%s", r.code, r.stderr)
			}
		})
	}
}

// TestBackupAfterKEKEpoch: a KEK epoch destroys the KEK key that wraps an
// older backup's data keys; list, verify and restore say plainly that
// the current key file cannot restore it, and an escrow taken before the
// epoch can (ADR 0015: only an escrowed old key brings old data back).
func TestBackupAfterKEKEpoch(t *testing.T) {
	dir, _ := secImportSynth(t, 2)
	idFile, rcpt := secAge(t)
	dest := filepath.Join(t.TempDir(), "backups")

	// A backup runs beside a server (the data directory held shared, as
	// serve holds it), not beside a direct import (held exclusive).
	release, err := app.HoldDataDir(secConfig(t, dir), true, "import")
	if err != nil {
		t.Fatal(err)
	}
	if r := secRun(t, "backup", "create", "--data", dir, "--recipient", rcpt, "--out", dest); r.code == 0 || !strings.Contains(r.stderr, "import") {
		t.Fatalf("backup beside a direct import: exit %d\n%s", r.code, r.stderr)
	}
	release()
	release, err = app.HoldDataDir(secConfig(t, dir), false, "serve")
	if err != nil {
		t.Fatal(err)
	}
	path := secBackup(t, dir, rcpt, dest)
	release()
	escrow := filepath.Join(t.TempDir(), "old.escrow")
	secMustRun(t, "keys", "escrow", "--data", dir, "--recipient", rcpt, "--out", escrow)
	kek := secConfig(t, dir).Keys.KeyFile

	secMustRun(t, "keys", "shred-epoch", "--force", "--data", dir)

	out := secMustRun(t, "backup", "list", "--key-file", kek, dest).stdout
	if !strings.Contains(out, "NOT RESTORABLE with "+kek) {
		t.Fatalf("backup list after the epoch:\n%s", out)
	}
	r := secRun(t, "backup", "verify", "--identity", idFile, "--key-file", kek, path)
	if r.code != 1 || !strings.Contains(r.stderr, "NOT RESTORABLE") || !strings.Contains(r.stderr, "lacks KEK key") {
		t.Fatalf("verify after the epoch: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = secRun(t, "backup", "restore", "--identity", idFile, "--key-file", kek, "--data", filepath.Join(t.TempDir(), "r1"), path)
	if r.code != 1 || !strings.Contains(r.stderr, "the key file lacks KEK keys this backup needs") {
		t.Fatalf("restore with the new key file: exit %d\n%s", r.code, r.stderr)
	}
	secMustRun(t, "backup", "restore", "--identity", idFile, "--escrow", escrow, "--data", filepath.Join(t.TempDir(), "r2"), path)
}

// TestBackupRestoreDetectsAForkedLog: a backup restored elsewhere and
// written to becomes a fork of the original log; restoring a backup of
// the fork against a checkpoint the original published fails, and a
// checkpoint newer than a backup is reported as its recovery point.
func TestBackupRestoreDetectsAForkedLog(t *testing.T) {
	a, _ := secImportSynth(t, 1)
	idFile, rcpt := secAge(t)
	dest := filepath.Join(t.TempDir(), "backups")
	x := secBackup(t, a, rcpt, dest)
	kek := secConfig(t, a).Keys.KeyFile

	b := filepath.Join(t.TempDir(), "b")
	secMustRun(t, "backup", "restore", "--identity", idFile, "--key-file", kek, "--data", b, x)
	// Each escrow is an audited event: A gets 2, the fork B gets 4.
	for i := range 4 {
		if i < 2 {
			secMustRun(t, "keys", "escrow", "--data", a, "--recipient", rcpt, "--out", filepath.Join(t.TempDir(), "a.escrow"))
		}
		secMustRun(t, "keys", "escrow", "--data", b, "--recipient", rcpt, "--out", filepath.Join(t.TempDir(), "b.escrow"))
	}
	aCheckpoint := secConfig(t, a).Audit.CheckpointFile

	// The original's newer checkpoint marks the recovery point of X.
	out := secMustRun(t, "backup", "restore", "--identity", idFile, "--key-file", kek, "--data", filepath.Join(t.TempDir(), "c1"),
		"--checkpoint", aCheckpoint, x).stdout
	if !strings.Contains(out, "RECOVERY POINT") {
		t.Fatalf("restore with a newer checkpoint:\n%s", out)
	}
	y := secBackup(t, b, rcpt, filepath.Join(t.TempDir(), "fork-backups"))
	r := secRun(t, "backup", "restore", "--identity", idFile, "--key-file", secConfig(t, b).Keys.KeyFile,
		"--data", filepath.Join(t.TempDir(), "c2"), "--checkpoint", aCheckpoint, y)
	if r.code != 1 || !strings.Contains(r.stderr, "rolled back or forked") {
		t.Fatalf("restore of the fork against the original's checkpoint: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// No success wording before the failure (the tester's finding 6).
	for _, w := range []string{"extends it", "not proven", "extends the backup's checkpoint", "OK"} {
		if strings.Contains(r.stdout, w) {
			t.Fatalf("a failed restore printed %q:\n%s", w, r.stdout)
		}
	}
}
