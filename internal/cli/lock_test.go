package cli_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
)

// lockBundle is a one-patient transaction Bundle.
const lockBundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:0b1d7c1e-0000-4000-8000-000000000001",
"resource":{"resourceType":"Patient","identifier":[{"system":"urn:example:mrn","value":"lock-1"}],"name":[{"family":"Lock"}]},
"request":{"method":"POST","url":"Patient"}}]}`

// TestDataDirLock: a direct import is refused while a server holds the
// data directory (the server runs here in-process through the CLI, as
// the binary does, holding the lock as serve does), with who holds it and
// what to do; commands that may run beside a server still do; once the
// server stops the import runs. An import holding the directory refuses
// a server and the other direct-access commands. With PostgreSQL no lock
// applies.
func TestDataDirLock(t *testing.T) {
	dir, _ := secInit(t)
	bundle := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(bundle, []byte(lockBundle), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startCLI(t, `"msg":"serving"`, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	r := secRun(t, "import", "--data", dir, "--quiet", bundle)
	want := "the data directory " + dir + " is in use by a running phivault (pid " + strconv.Itoa(os.Getpid()) + ": serve); stop it or use the API"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("import beside serve: exit %d, stderr:\n%s\nwant %q", r.code, r.stderr, want)
	}
	secMustRun(t, "user", "list", "--data", dir) // safe beside a server
	srv.stop()
	r = secMustRun(t, "import", "--data", dir, "--quiet", bundle)
	if _, ok := secTally(t, r.stdout); ok["Patient"] != 1 {
		t.Errorf("import after the server stopped:\n%s", r.stdout)
	}

	// An import (held here as import holds it) refuses a server and the
	// other direct-access commands.
	release, err := app.HoldDataDir(secConfig(t, dir), true, "import")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--data", dir, "--listen", "127.0.0.1:0"},
		{"user", "list", "--data", dir},
		{"demo", "--data", dir, "--listen", "127.0.0.1:0"},
	} {
		r := secRun(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "is in use by a running phivault (pid "+strconv.Itoa(os.Getpid())+": import); wait for it to finish") {
			t.Errorf("%s beside an import: exit %d\n%s", args[0], r.code, secTail(r.stderr, 2000))
		}
	}
	release()
	secMustRun(t, "user", "list", "--data", dir)

	t.Run("postgres", func(t *testing.T) {
		dir, _ := secInit(t, secDrivers[1].initArgs(t)...)
		srv := startCLI(t, `"msg":"serving"`, "serve", "--data", dir, "--listen", "127.0.0.1:0")
		defer srv.stop()
		secMustRun(t, "import", "--data", dir, "--quiet", bundle)
		if _, err := os.Stat(filepath.Join(dir, "phivault.lock")); !os.IsNotExist(err) {
			t.Errorf("a PostgreSQL data directory got a lock file: %v", err)
		}
	})
}
