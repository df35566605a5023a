package cli_test

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportThroughServer runs "import --url" against a running TLS
// server (trusting its CA with --cacert, the token from PHIVAULT_TOKEN):
// a synth dataset and the whole Synthea sample arrive complete, every
// resource is audited, and a wrong token fails with a clear 401 and exit
// code 1.
func TestImportThroughServer(t *testing.T) {
	dir, token := secInit(t)
	srv := secOpenApp(t, dir)
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	db := secDB(t, dir)
	synthDir := filepath.Join(t.TempDir(), "synth")
	secMustRun(t, "synth", "--patients", "5", "--out", synthDir)

	t.Setenv("PHIVAULT_TOKEN", "pvt_not-a-real-token-at-all-000000000000000")
	audit0 := secCount(t, dir, db, secAuditCount)
	r := secRun(t, "import", "--url", ts.URL, "--cacert", ca, "--quiet", synthDir)
	if r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("import with a wrong token: exit %d, stderr %q; want exit 1 naming 401", r.code, r.stderr)
	}
	if n := secCount(t, dir, db, "SELECT COUNT(*) FROM resources"); n != 0 {
		t.Fatalf("a refused import stored %d resources", n)
	}

	t.Setenv("PHIVAULT_TOKEN", token)
	want := map[string]int{}
	for _, src := range []string{synthDir, secSyntheaDir} {
		if src == secSyntheaDir && testing.Short() {
			continue
		}
		before := secCount(t, dir, db, secAuditCount)
		r := secMustRun(t, "import", "--url", ts.URL, "--cacert", ca, "--quiet", src)
		in, acc := secTally(t, r.stdout)
		n := 0
		for typ, k := range secInputCounts(t, src) {
			if in[typ] != k || acc[typ] != k {
				t.Errorf("%s: %s input %d accepted %d, the files hold %d", filepath.Base(src), typ, in[typ], acc[typ], k)
			}
			want[typ] += k
			n += k
		}
		if rate := secRateRE.FindStringSubmatch(r.stdout); rate != nil {
			t.Logf("import --url %s: %d resources, %s s, %s resources/s", filepath.Base(src), n, rate[1], rate[2])
		}
		if after := secCount(t, dir, db, secAuditCount); after-before < int64(n) {
			t.Errorf("importing %d resources added only %d audit events", n, after-before)
		}
	}
	secAssertCounts(t, srv, want)
	if audit0 == secCount(t, dir, db, secAuditCount) {
		t.Error("nothing was audited")
	}
}
