package cli_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// secEmptyLog deletes every table of the audit log, as an attacker with
// database access who wants a fresh history would.
func secEmptyLog(t *testing.T, dir string) {
	t.Helper()
	db := secDB(t, dir)
	for _, tbl := range []string{"tlog_bundles", "tlog_tiles", "tlog_checkpoints", "audit_events"} {
		secExec(t, dir, db, "DELETE FROM "+tbl)
	}
}

func secCheckpoints(t *testing.T, dir string) int64 {
	t.Helper()
	return secCount(t, dir, secDB(t, dir), "SELECT COUNT(*) FROM tlog_checkpoints")
}

// TestLogRewriteRefused (issue 11, item 12): the audit log emptied and
// the server restarted used to make it sign a new log from size 0 that
// "audit verify" accepted. The last signed checkpoint is now kept beside
// the key file: the server refuses to sign a log smaller than it (or
// one that does not extend it), says so (error, readiness, status), and
// "audit verify" and "verify" fail.
func TestLogRewriteRefused(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			kept := secConfig(t, dir).Audit.CheckpointFile
			if !strings.HasPrefix(kept, filepath.Dir(secConfig(t, dir).Keys.KeyFile)) {
				t.Errorf("the checkpoint is kept in %s, not beside the key file", kept)
			}
			// A small log, whose checkpoint we keep a copy of, then more.
			a := secOpenAppNoCleanup(t, dir)
			a.Close()
			early, err := os.ReadFile(kept)
			if err != nil {
				t.Fatalf("no checkpoint kept outside the database: %v", err)
			}
			synth := filepath.Join(t.TempDir(), "synth")
			secMustRun(t, "synth", "--patients", "1", "--out", synth)
			secMustRun(t, "import", "--data", dir, "--quiet", synth)
			if ok := secMustRun(t, "audit", "verify", "--data", dir); !strings.Contains(ok.stdout, "kept outside the database 1") {
				t.Errorf("audit verify did not check the kept checkpoint:\n%s", ok.stdout)
			}

			// Rollback: the log emptied.
			secEmptyLog(t, dir)
			a = secOpenAppNoCleanup(t, dir)
			if err := a.LogAlarm(); !errors.Is(err, merkle.ErrRollback) {
				t.Errorf("alarm after the log was emptied: %v, want a rollback", err)
			}
			if _, err := a.IntegrateLog(t.Context()); !errors.Is(err, merkle.ErrRollback) {
				t.Errorf("integrating an emptied log: %v, want a refusal (rollback)", err)
			}
			ts := httptest.NewServer(a.Handler())
			resp, err := ts.Client().Get(ts.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz answers %d while the log refuses to sign, want 503", resp.StatusCode)
			}
			ts.Close()
			if st, err := a.TrustStatus(t.Context()); err != nil || !strings.Contains(st.Alarm, "rolled-back") {
				t.Errorf("status: %+v, %v; want the alarm", st, err)
			}
			a.Close()
			if n := secCheckpoints(t, dir); n != 0 {
				t.Errorf("the server signed %d checkpoints of the emptied log", n)
			}
			for _, args := range [][]string{{"audit", "verify"}, {"verify"}} {
				r := secRun(t, append(args, "--data", dir)...)
				if r.code == 0 || !strings.Contains(r.stdout, "rolled back") {
					t.Errorf("phivault %s on an emptied log: exit %d\n%s", strings.Join(args, " "), r.code, r.stdout)
				}
			}

			// Rewrite: the kept checkpoint moved aside, a new log signed
			// with the same key and grown past the old size; then the
			// earlier checkpoint (a copy, or a witness's) comes back.
			if err := os.Remove(kept); err != nil {
				t.Fatal(err)
			}
			synth2 := filepath.Join(t.TempDir(), "synth2")
			secMustRun(t, "synth", "--patients", "1", "--seed", "7", "--out", synth2)
			secMustRun(t, "import", "--data", dir, "--quiet", synth2)
			if n := secCheckpoints(t, dir); n == 0 {
				t.Fatal("no new log was signed")
			}
			if err := os.WriteFile(kept, early, 0o600); err != nil {
				t.Fatal(err)
			}
			a = secOpenAppNoCleanup(t, dir)
			if err := a.LogAlarm(); !errors.Is(err, merkle.ErrRewrite) {
				t.Errorf("alarm for a log that does not extend the kept checkpoint: %v, want a rewrite", err)
			}
			a.Close()
			r := secRun(t, "audit", "verify", "--data", dir)
			if r.code == 0 || !strings.Contains(r.stdout, "is not a prefix of the stored log") {
				t.Errorf("audit verify of a rewritten log: exit %d\n%s", r.code, r.stdout)
			}
			// The same checkpoint given by hand (as a witness's or a
			// monitor's copy) is checked too.
			os.Remove(kept)
			other := filepath.Join(t.TempDir(), "witness.checkpoint")
			if err := os.WriteFile(other, early, 0o600); err != nil {
				t.Fatal(err)
			}
			r = secRun(t, "audit", "verify", "--data", dir, "--checkpoint", other)
			if r.code == 0 || !strings.Contains(r.stdout, "is not a prefix") {
				t.Errorf("audit verify --checkpoint with the earlier checkpoint: exit %d\n%s", r.code, r.stdout)
			}
			t.Log(fmt.Sprintf("%s: refused", drv.name))
		})
	}
}
