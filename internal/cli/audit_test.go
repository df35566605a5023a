package cli_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestAuditVerifyCLI: "phivault audit verify" passes on an honest data
// directory and names the leaf and record of a row changed with SQL; a
// wrong verifier key fails the signature check.
func TestAuditVerifyCLI(t *testing.T) {
	for _, d := range secDrivers {
		t.Run(d.name, func(t *testing.T) {
			dir, _ := secInit(t, d.initArgs(t)...)
			secMustRun(t, "user", "add", "--data", dir, "--roles", "auditor", "--break-glass", "alice")
			r := secMustRun(t, "audit", "verify", "--data", dir)
			if !strings.Contains(r.stdout, "OK: every audit event matches") {
				t.Fatalf("verify: %s", r.stdout)
			}
			pub := secMustRun(t, "audit", "pubkey", "--data", dir).stdout
			file, err := os.ReadFile(filepath.Join(dir, "log-verifier.pub"))
			if err != nil || string(file) != pub {
				t.Fatalf("pubkey %q, log-verifier.pub %q (%v)", pub, file, err)
			}

			other := filepath.Join(t.TempDir(), "other")
			secMustRun(t, "init", "--data", other, "--log-name", "localhost:8443/audit")
			otherKey := strings.TrimSpace(secMustRun(t, "audit", "pubkey", "--data", other).stdout)
			r = secRun(t, "audit", "verify", "--data", dir, "--vkey", otherKey)
			if r.code == 0 || !strings.Contains(r.stdout, "signature does not verify") {
				t.Fatalf("verify with another key: exit %d\n%s", r.code, r.stdout)
			}

			db := secDB(t, dir)
			secExec(t, dir, db, "UPDATE tlog_bundles SET body = ? WHERE n = 0", []byte("rewritten history"))
			r = secRun(t, "audit", "verify", "--data", dir)
			want := regexp.MustCompile(`TAMPERED audit log diverges at leaf 0: entry bundle 0 \(leaves 0\.\.[0-9]+\) does not open with the log key`)
			if r.code != 1 || !want.MatchString(r.stdout) {
				t.Fatalf("verify after tampering: exit %d\n%s\n%s", r.code, r.stdout, secTail(r.stderr, 500))
			}
		})
	}
}

// TestAuditMonitorCLI: "phivault audit monitor" follows a server over
// HTTP, and alarms (exit 1, state kept) when the server rolls back to an
// older checkpoint or shows checkpoints signed by another key.
func TestAuditMonitorCLI(t *testing.T) {
	dir, _ := secInit(t)
	vkey := strings.TrimSpace(secMustRun(t, "audit", "pubkey", "--data", dir).stdout)
	a := secOpenApp(t, dir)
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	monitor := func() secResult {
		return secRun(t, "audit", "monitor", "--url", ts.URL, "--vkey", vkey, "--state", state)
	}
	if r := monitor(); r.code != 0 || !strings.Contains(r.stdout, "OK first checkpoint") {
		t.Fatalf("first run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for range 3 {
		if _, err := a.Tokens().Create(t.Context(), "more", []string{"system"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Transparency().Integrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := monitor(); r.code != 0 || !strings.Contains(r.stdout, "consistent") {
		t.Fatalf("after growth: %d %s %s", r.code, r.stdout, r.stderr)
	}
	saved, _ := os.ReadFile(state)

	// Roll back: drop the newest checkpoint, as restoring an old backup would.
	db := secDB(t, dir)
	secExec(t, dir, db, "DELETE FROM tlog_checkpoints WHERE size = (SELECT MAX(size) FROM tlog_checkpoints)")
	r := monitor()
	if r.code != 1 || !strings.Contains(r.stdout, "ALARM merkle: rolled-back log") {
		t.Fatalf("rollback: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if now, _ := os.ReadFile(state); string(now) != string(saved) {
		t.Errorf("state changed by an alarm")
	}

	// Another log (another key, same name) behind the same URL.
	other := filepath.Join(t.TempDir(), "other")
	secMustRun(t, "init", "--data", other, "--log-name", "localhost:8443/audit")
	b := secOpenApp(t, other)
	ts.Config.Handler = b.Handler()
	r = monitor()
	if r.code != 1 || !strings.Contains(r.stdout, "ALARM merkle: checkpoint signature does not verify") {
		t.Fatalf("impostor: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestAuditWitnessCLI: a monitor with a witness key co-signs each
// checkpoint it accepted (C2SP cosignature/v1, checked here with the
// transparency-dev verifier and x/mod's note alone) and nothing after an
// alarm.
func TestAuditWitnessCLI(t *testing.T) {
	dir, _ := secInit(t)
	vkey := strings.TrimSpace(secMustRun(t, "audit", "pubkey", "--data", dir).stdout)
	keyFile := filepath.Join(t.TempDir(), "witness.key")
	wkey := strings.TrimSpace(secMustRun(t, "audit", "witness-key", "--name", "witness.example.org", "--out", keyFile).stdout)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness key file: %v %v", fi, err)
	}
	if r := secRun(t, "audit", "witness-key", "--name", "witness.example.org", "--out", keyFile); r.code == 0 {
		t.Fatal("witness-key replaced an existing key file")
	}
	a := secOpenApp(t, dir)
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	cosigned := filepath.Join(t.TempDir(), "checkpoint.cosigned")
	monitor := func() secResult {
		return secRun(t, "audit", "monitor", "--url", ts.URL, "--vkey", vkey, "--state", state, "--witness-key", keyFile, "--cosigned", cosigned)
	}
	logV, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	witnessV, err := fnote.NewVerifierForCosignatureV1(wkey)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantSize string) {
		t.Helper()
		b, err := os.ReadFile(cosigned)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(b, note.VerifierList(logV, witnessV))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("co-signed checkpoint: %v, %d verified signatures\n%s", err, len(n.Sigs), b)
		}
		if lines := strings.Split(n.Text, "\n"); len(lines) < 2 || lines[1] != wantSize {
			t.Fatalf("co-signed size %q, want %s", n.Text, wantSize)
		}
		ts, err := fnote.CoSigV1Timestamp(n.Sigs[1])
		if err != nil || time.Since(ts) > time.Minute {
			t.Fatalf("cosignature time %v %v", ts, err)
		}
	}
	r := monitor()
	if r.code != 0 || !strings.Contains(r.stdout, "COSIGNED size") {
		t.Fatalf("first run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := a.Tokens().Create(t.Context(), "more", []string{"system"}); err != nil {
		t.Fatal(err)
	}
	size, err := a.Transparency().Integrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r := monitor(); r.code != 0 || !strings.Contains(r.stdout, "consistent") {
		t.Fatalf("after growth: %d %s %s", r.code, r.stdout, r.stderr)
	}
	check(strconv.FormatInt(size, 10))
	before, _ := os.ReadFile(cosigned)
	db := secDB(t, dir)
	secExec(t, dir, db, "DELETE FROM tlog_checkpoints WHERE size = (SELECT MAX(size) FROM tlog_checkpoints)")
	if r := monitor(); r.code != 1 || !strings.Contains(r.stdout, "ALARM") {
		t.Fatalf("rollback: %d %s", r.code, r.stdout)
	}
	if after, _ := os.ReadFile(cosigned); string(after) != string(before) {
		t.Error("a witness co-signed after an alarm")
	}
}
