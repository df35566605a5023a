package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestoreShowsOverridesAndKeepsTheVerifierKey: a restore names
// every policy override and non-default configuration key it brings
// back; the restored instance has its verifier key (the configuration
// points at it) and "audit verify --vkey" with it passes.
func TestBackupRestoreShowsOverridesAndKeepsTheVerifierKey(t *testing.T) {
	// A relative --data, as an operator types it: the verifier key was
	// left out of backups then.
	t.Chdir(t.TempDir())
	dir := "data"
	secMustRun(t, "init", "--data", dir)
	idFile, rcpt := secAge(t)
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	pol := "@id(\"local-nothing\")\nforbid(principal, action, resource) when { false };\n"
	if err := os.WriteFile(filepath.Join(dir, "policies", "local.cedar"), []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backups")
	path := secBackup(t, dir, rcpt, dest)
	restored := filepath.Join(t.TempDir(), "restored")
	out := secMustRun(t, "backup", "restore", "--identity", idFile, "--key-file", secConfig(t, dir).Keys.KeyFile, "--data", restored, path).stdout
	if !strings.Contains(out, "POLICY OVERRIDE restored: policies/local.cedar") || !strings.Contains(out, "config restored (not the default): server.base_url = ") {
		t.Fatalf("restore did not name the overrides:\n%s", out)
	}
	if !strings.Contains(out, "(authenticated manifest)") {
		t.Fatalf("restore did not print the authenticated creation time:\n%s", out)
	}
	vk := secConfig(t, restored).Audit.VerifierKey
	if filepath.Dir(vk) != restored {
		t.Fatalf("the restored configuration's verifier key is %s, outside %s", vk, restored)
	}
	b, err := os.ReadFile(vk)
	if err != nil {
		t.Fatalf("the restored configuration's verifier key %s: %v", vk, err)
	}
	secMustRun(t, "audit", "verify", "--data", restored, "--vkey", strings.TrimSpace(string(b)))
}

// TestBackupListNeedsADirectory: a path that does not exist, or is a
// file, fails; an existing directory without backups says so.
func TestBackupListNeedsADirectory(t *testing.T) {
	empty := t.TempDir()
	if out := secMustRun(t, "backup", "list", empty).stdout; !strings.Contains(out, "no backups in") {
		t.Fatalf("list of an empty directory:\n%s", out)
	}
	missing := filepath.Join(empty, "nope")
	if r := secRun(t, "backup", "list", missing); r.code == 0 {
		t.Fatalf("list of a missing path: exit 0\n%s", r.stdout)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("list created the missing directory")
	}
	file := filepath.Join(empty, "f")
	_ = os.WriteFile(file, nil, 0o600)
	if r := secRun(t, "backup", "list", file); r.code == 0 || !strings.Contains(r.stderr, "not a directory") {
		t.Fatalf("list of a file: exit %d\n%s", r.code, r.stderr)
	}
}
