package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadJSONNamesFileLineColumn: import names the file, line and
// column of bad JSON, in a Bundle and in an NDJSON line.
func TestBadJSONNamesFileLineColumn(t *testing.T) {
	dir, _ := secInit(t)
	src := t.TempDir()
	files := map[string]string{
		// line 3, column 18: the stray "x".
		"syntax.json": "{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"batch\"x\n}\n",
		// line 2, column 20: resourceType is a number.
		"type.json": "{\"type\": \"batch\",\n  \"resourceType\": 42}\n",
		// cut short: the end of line 2 (column 11).
		"short.json": "{\"resourceType\": \"Bundle\",\n \"entry\": [",
		// NDJSON: line 2, column 3 (after two blanks): a stray ",".
		"lines.ndjson": "{\"resourceType\":\"Patient\",\"id\":\"ok\"}\n  ,{\"resourceType\":\"Patient\"}\n",
	}
	want := map[string]string{
		"syntax.json":  ":3:18: invalid JSON: invalid character 'x' after object key:value pair",
		"type.json":    ":2:20: unexpected JSON: a number for resourceType, want string",
		"short.json":   ":2:11: invalid JSON: ",
		"lines.ndjson": ":2:3: invalid JSON: invalid character ','",
	}
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		r := secRun(t, "import", "--data", dir, "--quiet", p)
		if r.code != 1 || !strings.Contains(r.stderr, "phivault: "+p+want[name]) {
			t.Errorf("%s: exit %d\n%s\nwant %q", name, r.code, r.stderr, p+want[name])
		}
	}
}

// TestUntrustedServerNamesCACert: a command that talks to a server
// whose certificate it does not trust says to pass --cacert, naming the
// demo's CA when there is one here.
func TestUntrustedServerNamesCACert(t *testing.T) {
	dir, token := secInit(t)
	srv := startCLI(t, `"msg":"serving"`, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "json")
	addr := between(srv.err.String(), `"address":"`, `"`)
	if addr == "" {
		t.Fatalf("no address in %s", srv.err.String())
	}
	t.Setenv("PHIVAULT_TOKEN", token)
	bundle := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(bundle, []byte(lockBundle), 0o600); err != nil {
		t.Fatal(err)
	}
	// Run where a demo directory with its CA is.
	here := t.TempDir()
	t.Chdir(here)
	r := secRun(t, "import", "--data", "elsewhere", "--url", "https://"+addr, "--quiet", bundle)
	if r.code != 1 || !strings.Contains(r.stderr, "The server's TLS certificate is not trusted: pass --cacert <path>") {
		t.Fatalf("untrusted server: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.MkdirAll(filepath.Join(here, "phivault-demo", "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(here, "phivault-demo", "tls", "ca.crt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = secRun(t, "import", "--data", "elsewhere", "--url", "https://"+addr, "--quiet", bundle)
	if r.code != 1 || !strings.Contains(r.stderr, "here: --cacert phivault-demo/tls/ca.crt") {
		t.Fatalf("untrusted server with a demo here: exit %d\n%s", r.code, r.stderr)
	}
	// With the CA named the import goes through.
	secMustRun(t, "import", "--data", "elsewhere", "--url", "https://"+addr, "--cacert", filepath.Join(dir, "tls", "ca.crt"), "--quiet", bundle)
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
