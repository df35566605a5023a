package cli_test

// What a person at a terminal sees: the demo's summary last, the serve
// banner, the log's format.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/cli"
)

// runningCLI is a long-running command (serve, demo) run in-process.
type runningCLI struct {
	out, err *syncBuf
	stop     func() int // cancels the command and returns its exit code
}

// startCLI runs the CLI with args until the test ends (or stop), and
// waits until its stdout or stderr holds ready.
func startCLI(t *testing.T, ready string, args ...string) *runningCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningCLI{out: &syncBuf{}, err: &syncBuf{}}
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, strings.NewReader(""), r.out, r.err) }()
	code, stopped := 0, false
	r.stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("phivault %s did not stop", args[0])
			}
		}
		return code
	}
	t.Cleanup(func() { r.stop() })
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(r.out.String(), ready) && !strings.Contains(r.err.String(), ready) {
		select {
		case code := <-done:
			stopped = true
			t.Fatalf("phivault %s exited %d before %q:\n%s\n%s", strings.Join(args, " "), code, ready, r.out.String(), secTail(r.err.String(), 3000))
		case <-deadline:
			t.Fatalf("phivault %s: no %q:\n%s\n%s", strings.Join(args, " "), ready, r.out.String(), secTail(r.err.String(), 3000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return r
}

// secCAClient trusts only the CA certificate at path.
func secCAClient(t *testing.T, path string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", path)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// logLines splits a log into lines and reports whether each is a JSON
// object.
func logLines(s string) (lines []string, json_ []bool) {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, "level=") && !strings.HasPrefix(l, "{") {
			continue // the progress bar and other human output
		}
		var m map[string]any
		lines = append(lines, l)
		json_ = append(json_, json.Unmarshal([]byte(l), &m) == nil)
	}
	return lines, json_
}

// TestDemoSummaryLast: the demo prints the accounts and their QR codes
// first and its summary (URLs, CA, token, the curl line) last, after the
// start-up log; the curl line works as printed; with --log-format=text
// the log is compact text lines, request lines included.
func TestDemoSummaryLast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := startCLI(t, "Press Ctrl-C to stop.", "demo", "--data", dir, "--patients", "1", "--listen", "127.0.0.1:0", "--log-format", "text")
	out := r.out.String()
	summary := strings.Index(out, "phivault demo is running at")
	lastQR := strings.LastIndex(out, "otpauth://")
	if summary < 0 || lastQR < 0 || summary < lastQR {
		t.Fatalf("the summary is not after the accounts and QR codes:\n%s", out)
	}
	tail := out[summary:]
	for _, want := range []string{"Web UI", "FHIR API", "TLS CA", "API token", "Try:", "curl --cacert"} {
		if !strings.Contains(tail, want) {
			t.Errorf("summary lacks %q:\n%s", want, tail)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "Press Ctrl-C to stop.") {
		t.Errorf("stdout does not end with the summary:\n%s", secTail(out, 500))
	}
	// The curl line as printed.
	m := regexp.MustCompile(`curl --cacert (\S+) -H "Authorization: Bearer (\S+)" "(\S+)"`).FindStringSubmatch(tail)
	if m == nil {
		t.Fatalf("no curl line:\n%s", tail)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, m[3], nil)
	req.Header.Set("Authorization", "Bearer "+m[2])
	resp, err := secCAClient(t, m[1]).Do(req)
	if err != nil {
		t.Fatalf("the summary's curl line: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the summary's curl line: %s", resp.Status)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.err.String(), "msg=request") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	r.stop()
	lines, isJSON := logLines(r.err.String())
	var request bool
	for i, l := range lines {
		if isJSON[i] {
			t.Errorf("--log-format=text wrote a JSON line: %s", l)
		}
		if strings.Contains(l, "msg=request") && strings.Contains(l, "method=GET") && strings.Contains(l, "status=200") {
			request = true
		}
	}
	if !request {
		t.Errorf("no text request line:\n%s", secTail(r.err.String(), 3000))
	}
}

// TestServeBanner: on a terminal (forced with --log-format=text) serve
// says where it listens, where the CA is and how the first administrator
// signs in; once one has a password the hint is gone. Off a terminal
// (JSON) it prints nothing to stdout and logs JSON lines only.
func TestServeBanner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	init := secMustRun(t, "init", "--data", dir)
	r := startCLI(t, "Press Ctrl-C to stop.", "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "text")
	out := r.out.String()
	base := regexp.MustCompile(`phivault is serving (https://localhost:[0-9]+)`).FindStringSubmatch(out)
	if base == nil {
		t.Fatalf("no serving line:\n%s", out)
	}
	ca := filepath.Join(dir, "tls", "ca.crt")
	for _, want := range []string{
		"Web UI          " + base[1] + "/",
		"FHIR API        " + base[1] + "/fhir",
		"TLS CA          " + ca,
		"--cacert " + ca,
		`Set the password of "admin"`,
		"phivault user set-password --enrolment-secret-file FILE admin --data " + dir,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	// The URL works with the CA it names.
	resp, err := secCAClient(t, ca).Get(base[1] + "/fhir/metadata")
	if err != nil {
		t.Fatalf("the banner's FHIR URL: %v", err)
	}
	resp.Body.Close()
	r.stop()

	// The admin sets a password: the hint is gone.
	secret := regexp.MustCompile(`pve_[A-Za-z0-9_-]{43}`).FindString(init.stdout)
	sf := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(sf, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	var o, e syncBuf
	if code := cli.Main(t.Context(), []string{"user", "set-password", "--data", dir, "--enrolment-secret-file", sf, "admin"},
		strings.NewReader("correct horse battery staple 42\n"), &o, &e); code != 0 {
		t.Fatalf("set-password: %d %s", code, e.String())
	}
	r = startCLI(t, "Press Ctrl-C to stop.", "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "text")
	if strings.Contains(r.out.String(), "security administrator") {
		t.Errorf("hint shown though the admin has a password:\n%s", r.out.String())
	}
	r.stop()

	// JSON: no banner; every log line is JSON.
	r = startCLI(t, `"msg":"serving"`, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "json")
	r.stop()
	if r.out.String() != "" {
		t.Errorf("serve printed to stdout off a terminal:\n%s", r.out.String())
	}
	lines, isJSON := logLines(r.err.String())
	for i, l := range lines {
		if !isJSON[i] {
			t.Errorf("--log-format=json wrote a non-JSON line: %s", l)
		}
	}
	// A bad format is refused.
	if res := secRun(t, "serve", "--data", dir, "--log-format", "xml"); res.code == 0 || !strings.Contains(res.stderr, "--log-format") {
		t.Errorf("--log-format=xml: exit %d %s", res.code, res.stderr)
	}
}
