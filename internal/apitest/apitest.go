// Package apitest starts a real phivault for end-to-end tests: a fresh
// data directory with its own key-encryption key, a fresh database on
// either driver (a SQLite file, or a PostgreSQL database from pgtest),
// the full HTTP handler behind a TLS test server, and an API token. The
// [Server] it returns sends every request with that bearer token.
//
// # Security invariants
//
//   - Everything is created under t.TempDir (mode 0600 key file) or in a
//     throw-away PostgreSQL database dropped at cleanup; nothing touches
//     a real data directory.
//   - The server log is captured in memory, never printed, so tests can
//     assert that no PHI-like sentinel value reaches it.
//
// # Lifetime
//
// [Start] registers the shutdown with t.Cleanup: the HTTP server stops
// first, then the app drains its audit batcher and closes the database,
// then pgtest drops the database. A Server may be shared by subtests of
// the test that started it; it is safe for concurrent use.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// Drivers are the storage drivers every end-to-end test runs on.
var Drivers = []string{"sqlite", "postgres"}

// Server is a running phivault with an API token.
type Server struct {
	// URL is the base URL, e.g. https://127.0.0.1:40123; FHIR is at URL+"/fhir".
	URL    string
	Driver string
	App    *app.App

	client *http.Client
	token  string
	logs   *lockedBuffer
}

// Start starts phivault on driver ("sqlite" or "postgres") and creates an
// API token with the "system" role. On PostgreSQL it skips the test with
// a "needs-postgres:" message when the server cannot be reached. opts
// are passed to app.Open (a login rate limit for browser tests, a clock).
func Start(t testing.TB, driver string, opts ...app.Option) *Server {
	t.Helper()
	return StartWith(t, driver, nil, opts...)
}

// StartWith is [Start] with the configuration changed by edit (when not
// nil) before the app opens: timeouts and limits for robustness tests.
func StartWith(t testing.TB, driver string, edit func(*config.Config), opts ...app.Option) *Server {
	t.Helper()
	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.Driver = driver
	switch driver {
	case "sqlite":
		c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	case "postgres":
		c.Storage.PostgresURL = pgtest.NewDatabase(t)
	default:
		t.Fatalf("apitest: unknown driver %q", driver)
	}
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}

	// The listener exists before the app so the base URL (used in
	// Location headers and links) is the real one.
	ts := httptest.NewUnstartedServer(nil)
	c.Server.BaseURL = "https://" + ts.Listener.Addr().String()
	if edit != nil {
		edit(&c)
	}
	if err := c.Validate(); err != nil {
		ts.Listener.Close()
		t.Fatalf("apitest: config: %v", err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.Open(t.Context(), c, logger, opts...)
	if err != nil {
		ts.Listener.Close()
		t.Fatalf("apitest: opening phivault on %s: %v", driver, err)
	}
	secret, err := a.Tokens().Create(t.Context(), "apitest", []string{"system"})
	if err != nil {
		ts.Listener.Close()
		a.Close()
		t.Fatalf("apitest: creating token: %v", err)
	}
	ts.Config.Handler = a.Handler()
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		if err := a.Close(); err != nil {
			t.Errorf("apitest: closing phivault: %v", err)
		}
	})
	client := ts.Client()
	// Redirects are answers too: a FHIR client that does not follow them
	// (curl without -L, most SDKs for POST) must not be served one.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Server{URL: ts.URL, Driver: driver, App: a, client: client, token: secret.Reveal(), logs: logs}
}

// Attach returns a Server for another process a on s's database (as a
// fleet runs them), served at url through client, sending s's token.
func Attach(s *Server, url string, a *app.App, client *http.Client) *Server {
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Server{URL: url, Driver: s.Driver, App: a, client: client, token: s.token, logs: s.logs}
}

// Token returns the bearer token the server's client sends.
func (s *Server) Token() string { return s.token }

// Logs returns everything the server logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// Response is one HTTP answer. JSON is the body parsed as a JSON object
// (nil when the body is empty or not an object).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// NoAuth is a header value that makes [Server.Do] send no Authorization
// header: Do(t, "GET", p, nil, H{"Authorization": NoAuth}).
const NoAuth = "\x00none"

// H is a set of request headers.
type H map[string]string

// Do sends one request to the server and reads the answer. path is
// relative to the base URL ("/fhir/Patient?name=x") or absolute (a next
// link). body is sent as is when it is []byte, string or io.Reader,
// otherwise encoded as JSON. Unless headers say otherwise the request
// carries the bearer token and Content-Type application/fhir+json (when
// there is a body). A transport error fails the test.
//
// It takes t, rather than remembering the t of Start, so a failure is
// reported by the subtest that made the request. Like t.Fatal it must be
// called from the test's goroutine; other goroutines use [Server.Send].
func (s *Server) Do(t testing.TB, method, path string, body any, headers H) *Response {
	t.Helper()
	r, err := s.Send(t.Context(), method, path, body, headers)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return r
}

// Send is [Server.Do] returning transport and encoding errors instead of
// failing a test; it is safe for concurrent use.
func (s *Server) Send(ctx context.Context, method, path string, body any, headers H) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encoding request body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	u := path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = s.URL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range headers {
		switch v {
		case NoAuth:
			req.Header.Del(k)
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading answer to %s %s: %w", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if dec.Decode(&m) == nil {
			r.JSON = m
		}
	}
	return r, nil
}

// String summarises the response for failure messages (status and a
// bounded prefix of the body).
func (r *Response) String() string {
	b := r.Body
	if len(b) > 600 {
		b = b[:600]
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// Want fails the test unless the status is one of want.
func (r *Response) Want(t testing.TB, want ...int) *Response {
	t.Helper()
	for _, w := range want {
		if r.Status == w {
			return r
		}
	}
	t.Fatalf("status: got %s, want %v", r, want)
	return r
}

// WantOutcome fails the test unless the status is want and the body is
// an OperationOutcome with at least one issue.
func (r *Response) WantOutcome(t testing.TB, want ...int) *Response {
	t.Helper()
	r.Want(t, want...)
	if r.JSON["resourceType"] != "OperationOutcome" {
		t.Fatalf("body: got %s, want an OperationOutcome", r)
	}
	if is, _ := r.JSON["issue"].([]any); len(is) == 0 {
		t.Fatalf("OperationOutcome without issues: %s", r)
	}
	return r
}

// ID returns the resource id of the body.
func (r *Response) ID() string {
	id, _ := r.JSON["id"].(string)
	return id
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
