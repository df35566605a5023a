package cli_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestImportThroughBusyServer: import --url asks a busy server (503
// with Retry-After, as phivault answers on a lock timeout) again, the
// probe and the Bundle alike, and stores the patient once.
func TestImportThroughBusyServer(t *testing.T) {
	dir, token := secInit(t)
	a := secOpenApp(t, dir)
	var posts, refused atomic.Int32
	h := a.Handler()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every other POST is refused as busy: the probe's first, the
		// Bundle's first.
		if r.Method == http.MethodPost && posts.Add(1)%2 == 1 {
			refused.Add(1)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"the service is temporarily unavailable; retry later"}]}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(bundle, []byte(lockBundle), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PHIVAULT_TOKEN", token)
	for i, want := range []string{"1 new, 0 already present", "0 new, 1 already present"} {
		r := secMustRun(t, "import", "--url", ts.URL, "--cacert", ca, "--quiet", bundle)
		if n, m := secNewPresent(t, r.stdout); (i == 0 && (n != 1 || m != 0)) || (i == 1 && (n != 0 || m != 1)) {
			t.Errorf("import %d: %d new, %d present; want %s", i+1, n, m, want)
		}
	}
	if refused.Load() < 2 {
		t.Fatalf("the front refused %d posts: the retry was not exercised", refused.Load())
	}
	secAssertCounts(t, a, map[string]int{"Patient": 1})
}
