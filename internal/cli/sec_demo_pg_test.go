package cli_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/cli"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// secEnvConfig loads dir's configuration with PHIVAULT_POSTGRES, as a
// command run with that variable does.
func secEnvConfig(t *testing.T, dir, pg string) config.Config {
	t.Helper()
	c, err := config.Load(dir, func(k string) string {
		if k == "PHIVAULT_POSTGRES" {
			return pg
		}
		return ""
	}, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secCheckEnvPostgres checks that dir's database is the PostgreSQL one
// PHIVAULT_POSTGRES names: no SQLite database was created, the verifier
// key init wrote is that log's, and its log raises no alarm.
func secCheckEnvPostgres(t *testing.T, dir, pg string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "phivault.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a SQLite database was created beside PHIVAULT_POSTGRES: %v", err)
	}
	c := secEnvConfig(t, dir, pg)
	a, err := app.Open(t.Context(), c, secDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Transparency().Alarm(); err != nil {
		t.Errorf("integrity alarm: %v", err)
	}
	vkey, err := os.ReadFile(c.Audit.VerifierKey)
	if err != nil || strings.TrimSpace(string(vkey)) != a.Transparency().VerifierKey() {
		t.Errorf("the verifier key init wrote (%q, %v) is not the PostgreSQL log's (%q)", vkey, err, a.Transparency().VerifierKey())
	}
	if _, err := os.Stat(c.Audit.CheckpointFile); err != nil {
		t.Errorf("no checkpoint kept: %v", err)
	}
}

// TestDemoWithPostgresEnv (SRE fault test 3): "phivault demo" with
// PHIVAULT_POSTGRES set raised an integrity alarm at start. init (demo's
// first step) ignored the PHIVAULT_* variables: it created a SQLite
// database, its log key, verifier key file and kept checkpoint, while
// every later step opened PostgreSQL, whose log the kept checkpoint
// did not verify against. init now creates what later commands with the
// same environment open.
func TestDemoWithPostgresEnv(t *testing.T) {
	// init alone.
	pg := pgtest.NewDatabase(t)
	t.Setenv("PHIVAULT_POSTGRES", pg)
	dir := filepath.Join(t.TempDir(), "data")
	secMustRun(t, "init", "--data", dir)
	secCheckEnvPostgres(t, dir, pg)
	// A command run without the variable on this data directory is
	// refused with what to set; it opens no SQLite database of its own
	// (SRE re-test F7: "keys shred-epoch --status" answered about one).
	t.Setenv("PHIVAULT_POSTGRES", "")
	if r := secRun(t, "keys", "shred-epoch", "--data", dir, "--status"); r.code == 0 || !strings.Contains(r.stderr, "PHIVAULT_POSTGRES") {
		t.Errorf("a command without PHIVAULT_POSTGRES on a PostgreSQL data directory: exit %d\n%s", r.code, secTail(r.stderr, 2000))
	}
	if _, err := os.Stat(filepath.Join(dir, "phivault.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command without PHIVAULT_POSTGRES created a SQLite database: %v", err)
	}

	// demo: init, synthetic patients, accounts, then serve.
	pg = pgtest.NewDatabase(t)
	t.Setenv("PHIVAULT_POSTGRES", pg)
	dir = filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuf
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"demo", "--data", dir, "--patients", "1", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb)
	}()
	deadline := time.After(2 * time.Minute)
wait:
	for !strings.Contains(out.String(), "phivault demo is running") {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d before serving:\n%s\n%s", code, out.String(), secTail(errb.String(), 2000))
		case <-deadline:
			t.Fatalf("demo did not start:\n%s", secTail(errb.String(), 2000))
		case <-time.After(50 * time.Millisecond):
			continue wait
		}
	}
	cancel()
	<-done
	if strings.Contains(errb.String(), "ALARM") || strings.Contains(errb.String(), "integration failed") {
		t.Errorf("demo raised an alarm:\n%s", secTail(errb.String(), 2000))
	}
	secCheckEnvPostgres(t, dir, pg)

	// The same database reused by a new data directory (a second demo
	// directory, say) is refused before anything is created, so a run
	// against a new database afterwards starts afresh.
	again := filepath.Join(t.TempDir(), "again")
	r := secRun(t, "demo", "--data", again, "--patients", "1", "--listen", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "already holds a phivault data set") || strings.Contains(r.stderr, pg) {
		t.Errorf("demo on a reused database: exit %d\n%s", r.code, secTail(r.stderr, 2000))
	}
	for _, f := range []string{config.FileName, "keys/kek.json"} {
		if _, err := os.Stat(filepath.Join(again, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused init left %s: %v", f, err)
		}
	}
}
