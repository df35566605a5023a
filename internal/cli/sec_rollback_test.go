package cli_test

import (
	"errors"
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
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrRollback) {
				t.Errorf("alarm after the log was emptied: %v, want a rollback", err)
			}
			if _, err := a.Transparency().Integrate(t.Context()); !errors.Is(err, merkle.ErrRollback) {
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
			if st, err := a.Transparency().Status(t.Context()); err != nil || !strings.Contains(st.Alarm, "rolled-back") {
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

			// Rewrite: the kept checkpoint moved aside and the emptied log
			// accepted by an operator, a new log signed with the same key
			// and grown past the old size; then the earlier checkpoint (a
			// copy, or a witness's) comes back.
			if err := os.Remove(kept); err != nil {
				t.Fatal(err)
			}
			secMustRun(t, "audit", "accept-checkpoint", "--data", dir)
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
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrRewrite) {
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
			t.Logf("%s: refused", drv.name)
		})
	}
}

// secReady returns the status /readyz answers.
func secReady(t *testing.T, a interface{ Handler() http.Handler }) int {
	t.Helper()
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMissingCheckpointRefused (SRE fault test 1): with the kept
// checkpoint deleted and the log tables emptied, the server started,
// signed a fresh log from size 0 and kept a new checkpoint: deleting
// one file defeated the rewrite protection. init now keeps the
// checkpoint, and its absence is an integrity alarm (error, readiness,
// status; "audit verify" fails) until an operator runs "audit
// accept-checkpoint", which verifies and prints what it accepts, keeps
// it, and audits it with a high alert.
func TestMissingCheckpointRefused(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			kept := secConfig(t, dir).Audit.CheckpointFile
			if b, err := os.ReadFile(kept); err != nil || len(b) == 0 {
				t.Fatalf("init kept no checkpoint: %v", err)
			}
			synth := filepath.Join(t.TempDir(), "synth")
			secMustRun(t, "synth", "--patients", "1", "--out", synth)
			secMustRun(t, "import", "--data", dir, "--quiet", synth)

			// Deleted with a signed log in the database: refused.
			if err := os.Remove(kept); err != nil {
				t.Fatal(err)
			}
			before := secCheckpoints(t, dir)
			a := secOpenAppNoCleanup(t, dir)
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrAnchorMissing) {
				t.Errorf("alarm with the kept checkpoint deleted: %v, want ErrAnchorMissing", err)
			}
			a.Close()
			if n := secCheckpoints(t, dir); n != before {
				t.Errorf("%d checkpoints signed with the kept checkpoint deleted", n-before)
			}
			for _, args := range [][]string{{"audit", "verify"}, {"verify"}} {
				if r := secRun(t, append(args, "--data", dir)...); r.code == 0 || !strings.Contains(r.stdout, "kept outside the database is missing") {
					t.Errorf("phivault %s with the kept checkpoint deleted: exit %d\n%s", strings.Join(args, " "), r.code, r.stdout)
				}
			}

			// Deleted and the log emptied: refused, and audit verify fails.
			secEmptyLog(t, dir)
			secMustRun(t, "import", "--data", dir, "--quiet", synth)
			a = secOpenAppNoCleanup(t, dir)
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrAnchorMissing) {
				t.Errorf("alarm with the kept checkpoint deleted and the log emptied: %v, want ErrAnchorMissing", err)
			}
			if code := secReady(t, a); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz answers %d with the kept checkpoint missing, want 503", code)
			}
			if st, err := a.Transparency().Status(t.Context()); err != nil || !strings.Contains(st.Alarm, "missing") {
				t.Errorf("status: %+v, %v; want the alarm", st, err)
			}
			a.Close()
			if n := secCheckpoints(t, dir); n != 0 {
				t.Errorf("the server signed %d checkpoints of the emptied log", n)
			}
			if _, err := os.Stat(kept); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a checkpoint was kept anew: %v", err)
			}
			if r := secRun(t, "audit", "verify", "--data", dir); r.code == 0 || !strings.Contains(r.stdout, "MISSING") {
				t.Errorf("audit verify with the kept checkpoint missing: exit %d\n%s", r.code, r.stdout)
			}
			if r := secRun(t, "verify", "--data", dir); r.code == 0 || !strings.Contains(r.stdout, "kept outside the database is missing") {
				t.Errorf("verify with the kept checkpoint missing: exit %d\n%s", r.code, r.stdout)
			}

			// The operator accepts the database's log, explicitly.
			r := secMustRun(t, "audit", "accept-checkpoint", "--data", dir)
			if !strings.Contains(r.stdout, "ACCEPTED the audit log of 0 leaves") || !strings.Contains(r.stdout, "kept in "+kept) {
				t.Errorf("accept-checkpoint printed:\n%s", r.stdout)
			}
			if r := secRun(t, "audit", "accept-checkpoint", "--data", dir); r.code == 0 {
				t.Errorf("accept-checkpoint over a kept checkpoint succeeded:\n%s", r.stdout)
			}
			a = secOpenAppNoCleanup(t, dir)
			if _, err := a.Transparency().Integrate(t.Context()); err != nil || a.Transparency().Alarm() != nil {
				t.Errorf("after accept-checkpoint: %v, alarm %v", err, a.Transparency().Alarm())
			}
			evs, err := a.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			accepted := 0
			for _, ev := range evs {
				if ev.Action == "audit-log-accept" && ev.Agent.Client == "cli" && len(ev.Entities) == 1 && ev.Entities[0] == "checkpoint/0" {
					accepted++
				}
			}
			if accepted != 1 {
				t.Errorf("%d audit-log-accept events, want 1", accepted)
			}
			a.Close()
			if n := secCount(t, dir, secDB(t, dir), "SELECT COUNT(*) FROM authz_alerts WHERE kind = 'audit-log-accepted' AND priority = 'high'"); n != 1 {
				t.Errorf("%d audit-log-accepted alerts, want 1", n)
			}
			secMustRun(t, "audit", "verify", "--data", dir)
		})
	}
}

// TestUnkeepableCheckpointStopsSigning (SRE fault test 2): a checkpoint
// that cannot be kept outside the database (its path replaced by a
// directory: portable, unlike chmod, which root ignores) raised an
// error line only. Now it is an alarm (readiness 503, status) and
// nothing is signed; appended events stay pending and are integrated
// once the file is back.
func TestUnkeepableCheckpointStopsSigning(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			kept := secConfig(t, dir).Audit.CheckpointFile
			good, err := os.ReadFile(kept)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(kept); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(kept, "x"), 0o700); err != nil {
				t.Fatal(err)
			}
			before := secCheckpoints(t, dir)
			synth := filepath.Join(t.TempDir(), "synth")
			secMustRun(t, "synth", "--patients", "1", "--out", synth)
			secMustRun(t, "import", "--data", dir, "--quiet", synth)
			a := secOpenAppNoCleanup(t, dir)
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrAnchorIO) {
				t.Errorf("alarm with an unwritable kept checkpoint: %v, want ErrAnchorIO", err)
			}
			if code := secReady(t, a); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz answers %d, want 503", code)
			}
			a.Close()
			if n := secCheckpoints(t, dir); n != before {
				t.Errorf("%d checkpoints signed that could not be kept", n-before)
			}
			db := secDB(t, dir)
			pending := secCount(t, dir, db, "SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NULL")
			if pending == 0 {
				t.Fatal("no audit event pending")
			}
			// Back: everything pending is integrated and kept.
			if err := os.RemoveAll(kept); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(kept, good, 0o600); err != nil {
				t.Fatal(err)
			}
			a = secOpenAppNoCleanup(t, dir)
			if err := a.Transparency().Alarm(); err != nil {
				t.Errorf("alarm after the file is back: %v", err)
			}
			a.Close()
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NULL"); n != 0 {
				t.Errorf("%d audit events still pending", n)
			}
			now, err := os.ReadFile(kept)
			if err != nil || string(now) == string(good) {
				t.Errorf("the new checkpoint was not kept: %v", err)
			}
			secMustRun(t, "audit", "verify", "--data", dir)
		})
	}
}
