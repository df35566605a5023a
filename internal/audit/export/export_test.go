package export_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/tlsca"
)

// testSecret is a Standard Webhooks secret (whsec_ + base64 of 32 bytes).
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8ThKNvxyFhs="

// logSeqs integrates every recorded event into the Merkle tree and
// returns the leaf indexes of the whole log: 0..size-1.
func logSeqs(t *testing.T, s *apitest.Server) []int64 {
	t.Helper()
	size, err := s.App.Transparency().Integrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var idx []int64
	err = s.App.Transparency().Reader().ScanLeaves(t.Context(), 0, size, func(i int64, _ []byte, _ bool) error {
		idx = append(idx, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(idx)) != size {
		t.Fatalf("%d leaves for a tree of size %d", len(idx), size)
	}
	return idx
}

// makeEvents creates patients through the API: each create and the
// reads after it are audited.
func makeEvents(t *testing.T, s *apitest.Server, n int) {
	t.Helper()
	for range n {
		id := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female"})
		s.Do(t, http.MethodGet, "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
	}
}

func newExporter(t *testing.T, s *apitest.Server, sink export.Sink, batch int, redact ...string) *export.Exporter {
	t.Helper()
	red, err := export.NewRedaction(redact)
	if err != nil {
		t.Fatal(err)
	}
	x, err := export.New(export.Options{
		Sink: sink, Redact: red, Source: s.App.Transparency().Reader(),
		Cursors: s.App.Store.(*sqldb.Store).ExportCursors(), Batch: batch,
	})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// webhookReceiver verifies signatures, fails the first failN deliveries
// with 503, and records the sequence numbers it accepted (with repeats).
type webhookReceiver struct {
	t     *testing.T
	wh    *standardwebhooks.Webhook
	mu    sync.Mutex
	failN int
	seqs  []int64
	ids   []string
	bad   int
}

func (rv *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if err := rv.wh.Verify(body, r.Header); err != nil {
		rv.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rv.failN > 0 {
		rv.failN--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			First  int64            `json:"first_seq"`
			Last   int64            `json:"last_seq"`
			Events []map[string]any `json:"events"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Type != export.WebhookType {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	for _, ev := range p.Data.Events {
		rv.seqs = append(rv.seqs, int64(ev["index"].(float64)))
	}
	rv.ids = append(rv.ids, r.Header.Get(standardwebhooks.HeaderWebhookID))
	w.WriteHeader(http.StatusNoContent)
}

// A failing webhook loses nothing: the cursor stays until the receiver
// accepts, every event arrives exactly once in order, every delivery is
// signed, and a retry carries the same webhook-id.
func TestWebhookDeliversEveryEventDespiteFailures(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		makeEvents(t, s, 6)
		want := logSeqs(t, s)
		wh, err := standardwebhooks.NewWebhook(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		rv := &webhookReceiver{t: t, wh: wh, failN: 2}
		ts := httptest.NewTLSServer(rv)
		defer ts.Close()
		sink, err := export.NewWebhook("siem", export.WebhookOptions{URL: ts.URL, Secret: testSecret, Client: ts.Client()})
		if err != nil {
			t.Fatal(err)
		}
		x := newExporter(t, s, sink, 5)
		for i := range 2 {
			if n, err := x.Step(t.Context()); err == nil || n != 0 {
				t.Fatalf("delivery %d to a failing receiver: n=%d err=%v, want an error", i, n, err)
			}
		}
		if _, err := x.Drain(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		rv.mu.Lock()
		defer rv.mu.Unlock()
		if !slices.Equal(rv.seqs, want) {
			t.Fatalf("received %v\nwant the whole log %v", rv.seqs, want)
		}
		if rv.bad != 0 {
			t.Errorf("%d deliveries had a bad signature", rv.bad)
		}
		if len(want) < 12 {
			t.Fatalf("only %d events in the log", len(want))
		}
		if first := export.BatchID([]export.Record{{Index: want[0]}, {Index: want[4]}}); rv.ids[0] != first {
			t.Errorf("first batch id %q, want %q (the retried batch keeps its id)", rv.ids[0], first)
		}
	})
}

// The cursor is durable: a new exporter (a restart) resumes after the
// last accepted batch and sends nothing twice.
func TestExportResumesAtTheCursor(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		makeEvents(t, s, 3)
		logSeqs(t, s)
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		f1, err := export.OpenFile("file", path)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := newExporter(t, s, f1, 2).Step(t.Context()); err != nil || n != 2 {
			t.Fatalf("first step: %d, %v", n, err)
		}
		f1.Close()
		makeEvents(t, s, 1)
		want := logSeqs(t, s)
		f2, err := export.OpenFile("file", path)
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		if _, err := newExporter(t, s, f2, 2).Drain(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		got := readLines(t, path)
		var seqs []int64
		for _, l := range got {
			seqs = append(seqs, int64(l["index"].(float64)))
		}
		if !slices.Equal(seqs, want) {
			t.Fatalf("file holds %v, want %v", seqs, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("export file mode %04o, want 0600", st.Mode().Perm())
		}
	})
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// Redacted fields never leave; the rest of the event does.
func TestRedactionRemovesFieldsBeforeExport(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	makeEvents(t, s, 2)
	logSeqs(t, s)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := export.OpenFile("file", path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := newExporter(t, s, f, 100, "agent.address", "patients", "entities").Drain(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	var creates int
	for _, l := range lines {
		if _, ok := l["patients"]; ok {
			t.Fatalf("patients exported despite redaction: %v", l)
		}
		if _, ok := l["entities"]; ok {
			t.Fatalf("entities exported despite redaction: %v", l)
		}
		agent, _ := l["agent"].(map[string]any)
		if _, ok := agent["address"]; ok {
			t.Fatalf("agent.address exported despite redaction: %v", l)
		}
		if l["action"] == nil || l["time"] == nil || l["outcome"] == nil {
			t.Fatalf("an unredacted field is missing: %v", l)
		}
		if l["action"] == string(audit.ActionCreate) {
			creates++
			if agent["user"] == nil || l["request_id"] == nil {
				t.Fatalf("a create event lost an unredacted field: %v", l)
			}
		}
	}
	if creates != 2 {
		t.Fatalf("%d create events exported, want 2", creates)
	}

	if _, err := export.NewRedaction([]string{"agent.password"}); err == nil || !strings.Contains(err.Error(), "agent.address") {
		t.Fatalf("unknown field: %v, want an error listing the valid fields", err)
	}
}

// syslogCollector is a TLS syslog server that parses what it receives
// with an independent RFC 5424 / RFC 5425 parser.
type syslogCollector struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []*rfc5424.SyslogMessage
	errs []error
	done chan struct{}
}

func startCollector(t *testing.T, cert tls.Certificate) *syslogCollector {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	c := &syslogCollector{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				p := octetcounting.NewParser(syslog.WithBestEffort(), syslog.WithListener(func(r *syslog.Result) {
					c.mu.Lock()
					defer c.mu.Unlock()
					if r.Error != nil && !strings.Contains(r.Error.Error(), "EOF") { // the end of a connection
						c.errs = append(c.errs, r.Error)
						return
					}
					if r.Message != nil {
						c.msgs = append(c.msgs, r.Message.(*rfc5424.SyslogMessage))
					}
				}))
				p.Parse(conn)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-c.done })
	return c
}

func (c *syslogCollector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func localCA(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	files := tlsca.Files{CACert: filepath.Join(dir, "ca.crt"), ServerCert: filepath.Join(dir, "s.crt"), ServerKey: filepath.Join(dir, "s.key")}
	if _, err := tlsca.Create(files, time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return cert, pool
}

// Syslog: RFC 5424 messages, octet-counted over TLS, that an independent
// parser accepts; facility "log audit"; the JSON event as MSG. A
// collector whose certificate is not trusted gets nothing and the
// cursor stays.
func TestSyslogOverTLS(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	makeEvents(t, s, 2)
	want := logSeqs(t, s)
	cert, roots := localCA(t)
	col := startCollector(t, cert)
	addr := col.ln.Addr().String()

	untrusted, err := export.NewSyslog("syslog", export.SyslogOptions{Address: addr, TLS: &tls.Config{ServerName: "localhost"}, Hostname: "phivault-test"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := newExporter(t, s, untrusted, 100).Step(t.Context()); err == nil || n != 0 {
		t.Fatalf("export to an untrusted collector: n=%d err=%v, want a certificate error", n, err)
	}
	untrusted.Close()

	sink, err := export.NewSyslog("syslog", export.SyslogOptions{Address: addr, TLS: &tls.Config{RootCAs: roots, ServerName: "localhost"}, Hostname: "phivault-test"})
	if err != nil {
		t.Fatal(err)
	}
	x := newExporter(t, s, sink, 3)
	if _, err := x.Drain(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	deadline := time.Now().Add(10 * time.Second)
	for col.count() < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.errs) > 0 {
		t.Fatalf("the collector could not parse: %v", col.errs)
	}
	if len(col.msgs) != len(want) {
		t.Fatalf("collector got %d messages, want %d", len(col.msgs), len(want))
	}
	for i, m := range col.msgs {
		if *m.Facility != 13 || m.Version != 1 || *m.Appname != "phivault" || *m.Hostname != "phivault-test" {
			t.Fatalf("message %d header: facility %d version %d app %v host %v", i, *m.Facility, m.Version, *m.Appname, *m.Hostname)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(*m.Message), &ev); err != nil {
			t.Fatalf("message %d MSG is not JSON: %v", i, err)
		}
		if int64(ev["index"].(float64)) != want[i] || *m.MsgID != ev["action"] {
			t.Fatalf("message %d: index %v msgid %v, want index %d and the action %v", i, ev["index"], *m.MsgID, want[i], ev["action"])
		}
	}
}

// Sinks refuse insecure or incomplete configuration up front.
func TestSinkOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  export.WebhookOptions
	}{
		{"plain http", export.WebhookOptions{URL: "http://siem.example/hook", Secret: testSecret}},
		{"loopback http without the option", export.WebhookOptions{URL: "http://127.0.0.1:9/hook", Secret: testSecret}},
		{"credentials in the url", export.WebhookOptions{URL: "https://u:p@siem.example/hook", Secret: testSecret}},
		{"short secret", export.WebhookOptions{URL: "https://siem.example/hook", Secret: "whsec_c2hvcnQ="}},
		{"secret not base64", export.WebhookOptions{URL: "https://siem.example/hook", Secret: "whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"}},
		{"relative url", export.WebhookOptions{URL: "/hook", Secret: testSecret}},
	} {
		if _, err := export.NewWebhook("w", tc.opt); err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if strings.Contains(err.Error(), testSecret[6:]) {
			t.Errorf("%s: the error reveals the secret: %v", tc.name, err)
		}
	}
	if _, err := export.NewWebhook("w", export.WebhookOptions{URL: "http://127.0.0.1:9/hook", Secret: testSecret, AllowLoopbackHTTP: true}); err != nil {
		t.Errorf("loopback http with the option: %v", err)
	}
	if _, err := export.NewSyslog("s", export.SyslogOptions{Address: "siem.example:6514"}); err == nil {
		t.Error("syslog without TLS accepted")
	}
	if _, err := export.NewSyslog("s", export.SyslogOptions{Address: "siem.example", TLS: &tls.Config{}}); err == nil {
		t.Error("syslog address without a port accepted")
	}
}

// The cursor is a compare-and-set: two processes exporting to one sink
// cannot both advance from the same position, and it never goes back.
func TestCursorCompareAndSet(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		c := s.App.Store.(*sqldb.Store).ExportCursors()
		ctx := context.Background()
		if got, err := c.Cursor(ctx, "a"); err != nil || got != 0 {
			t.Fatalf("new cursor: %d, %v", got, err)
		}
		if err := c.Advance(ctx, "a", 0, 5); err != nil {
			t.Fatal(err)
		}
		if err := c.Advance(ctx, "a", 0, 6); !errors.Is(err, export.ErrMoved) {
			t.Fatalf("second advance from 0: %v, want ErrMoved", err)
		}
		if err := c.Advance(ctx, "a", 5, 3); err == nil {
			t.Fatal("a backwards advance was accepted")
		}
		if err := c.Advance(ctx, "a", 5, 9); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Cursor(ctx, "a"); got != 9 {
			t.Fatalf("cursor %d, want 9", got)
		}
		if got, _ := c.Cursor(ctx, "b"); got != 0 {
			t.Fatalf("another sink's cursor %d, want 0", got)
		}
	})
}

// A record that does not open (tampered, or a wrong log key) stops the
// export at that record: nothing after it is sent and nothing is
// skipped silently.
func TestExportStopsAtAnUnreadableRecord(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	makeEvents(t, s, 1)
	logSeqs(t, s)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := export.OpenFile("file", path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := export.New(export.Options{
		Sink: f, Source: merkle.NewReader(s.App.Store.(*sqldb.Store).TLog(), brokenKey{}), Cursors: s.App.Store.(*sqldb.Store).ExportCursors(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := x.Step(t.Context()); err == nil || n != 0 {
		t.Fatalf("step over an unreadable record: n=%d err=%v", n, err)
	}
	if lines := readLines(t, path); len(lines) != 0 {
		t.Fatalf("%d lines written past an unreadable record", len(lines))
	}
}

// brokenKey opens nothing, as a wrong log key would.
type brokenKey struct{}

func (brokenKey) OpenLeaf([]byte) ([]byte, bool, error) {
	return nil, false, errors.New("opening audit record: authentication failed")
}

func (brokenKey) SealBundle(int64, [][]byte, []bool) ([]byte, error) {
	return nil, errors.New("sealing: no key")
}

func (brokenKey) OpenBundle(int64, int, []byte) ([][]byte, []bool, error) {
	return nil, nil, errors.New("opening entry bundle: authentication failed")
}
