package cli_test

// Robustness of "phivault serve" against slow and numerous clients and
// against a database outage (issue 11 item 15). The server is the real
// one: cli.Main("serve") in-process, on a data directory made by init,
// with the options under test written into its phivault.json.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/cli"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// secEditConfig sets options in dir's phivault.json: keys are
// "section.option".
func secEditConfig(t *testing.T, dir string, set map[string]any) {
	t.Helper()
	p := filepath.Join(dir, config.FileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		sec, opt, _ := strings.Cut(k, ".")
		if m[sec] == nil {
			m[sec] = map[string]any{}
		}
		m[sec][opt] = v
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuf is the server's stderr (its JSON log).
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secServer is a running "phivault serve".
type secServer struct {
	addr string
	log  *syncBuf
	stop func() // stops the server and waits for it
}

// secServe runs "phivault serve" on dir until the test ends (or stop).
func secServe(t *testing.T, dir string) *secServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncBuf{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, log)
	}()
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == "" && time.Now().Before(deadline); {
		sc := bufio.NewScanner(strings.NewReader(log.String()))
		for sc.Scan() {
			var l struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "serving" {
				addr = l.Address
			}
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d: %s", code, secTail(log.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("serve did not start: %s", secTail(log.String(), 2000))
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &secServer{addr: addr, log: log, stop: stop}
}

func (s *secServer) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
}

// closedWithin reports whether the server closes c (a read returns EOF
// or an error other than our own deadline) within d, while keep (if
// set) keeps writing to it.
func closedWithin(c net.Conn, d time.Duration, keep func() error) bool {
	stopped := make(chan struct{})
	if keep != nil {
		go func() {
			for {
				select {
				case <-stopped:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if keep() != nil {
					return
				}
			}
		}()
	}
	defer close(stopped)
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // an answer (408) before the close
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestServeConnectionLimits: one address cannot hold more than its
// share of connections (the next is closed at once), and no more than
// the total are served at once (the next waits until one closes).
func TestServeConnectionLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		dir, _ := secInit(t)
		secEditConfig(t, dir, map[string]any{"limits.max_connections": 50, "limits.max_connections_per_address": 4, "timeouts.read_header": "30s"})
		s := secServe(t, dir)
		var held []net.Conn
		for range 4 {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		over, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		if !closedWithin(over, 10*time.Second, nil) {
			t.Fatal("a fifth connection from one address was kept open")
		}
		over.Close()
		for _, c := range held {
			if closedWithin(c, 200*time.Millisecond, nil) {
				t.Fatal("a connection within the address's share was closed")
			}
		}
		held[0].Close()
		var ok bool
		for range 50 {
			if resp, err := s.client().Get("https://" + s.addr + "/healthz"); err == nil {
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			t.Fatal("a slot freed by a closed connection was not given to a new one")
		}
		for _, c := range held[1:] {
			c.Close()
		}
	})
	t.Run("total", func(t *testing.T) {
		dir, _ := secInit(t)
		secEditConfig(t, dir, map[string]any{"limits.max_connections": 4, "limits.max_connections_per_address": 0, "timeouts.read_header": "30s"})
		s := secServe(t, dir)
		var held []net.Conn
		for range 4 {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		got := make(chan error, 1)
		go func() {
			resp, err := s.client().Get("https://" + s.addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("a fifth connection was served while four were held (%v)", err)
		case <-time.After(time.Second):
		}
		held[0].Close()
		if err := <-got; err != nil {
			t.Fatalf("the waiting connection was not served once a slot freed: %v", err)
		}
		for _, c := range held[1:] {
			c.Close()
		}
	})
}

// TestServeIdleConnectionsGiveWay: "phivault serve" tells its listener
// which connections are idle: with every slot held by idle keep-alive
// connections from several addresses (TLS), a client from another
// address is served at once instead of waiting in the accept queue.
func TestServeIdleConnectionsGiveWay(t *testing.T) {
	dir, _ := secInit(t)
	secEditConfig(t, dir, map[string]any{"limits.max_connections": 6, "limits.max_connections_per_address": 2, "timeouts.idle": "5m"})
	s := secServe(t, dir)
	keepAlive := func(from string) (net.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", s.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // the test's patience
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		_ = c.SetDeadline(time.Time{})
		return c, nil
	}
	for i := 2; i <= 4; i++ {
		for range 2 {
			c, err := keepAlive(fmt.Sprintf("127.0.0.%d", i))
			if err != nil {
				t.Fatalf("filling the slots: %v", err)
			}
			defer c.Close()
		}
	}
	c, err := keepAlive("127.0.0.9")
	if err != nil {
		t.Fatalf("a new client was not served while idle connections held every slot: %v", err)
	}
	c.Close()
}

// TestServeIdleHTTP2ConnectionsGiveWay: an HTTP/2 connection with no
// request in flight is idle too, and gives its slot to a new client.
func TestServeIdleHTTP2ConnectionsGiveWay(t *testing.T) {
	dir, _ := secInit(t)
	secEditConfig(t, dir, map[string]any{"limits.max_connections": 4, "limits.max_connections_per_address": 2, "timeouts.idle": "5m"})
	s := secServe(t, dir)
	h2get := func(from string) error {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
			DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
		}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second} // the test's patience
		resp, err := c.Get("https://" + s.addr + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		return nil
	}
	for _, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"} {
		if err := h2get(from); err != nil {
			t.Fatalf("filling the slots: %v", err)
		}
	}
	if err := h2get("127.0.0.9"); err != nil {
		t.Fatalf("a new client was not served while idle HTTP/2 connections held every slot: %v", err)
	}
}

// TestServeSlowClients: a client that trickles its headers, trickles
// its body, or idles on a keep-alive connection is disconnected after
// the configured time, not after minutes.
func TestServeSlowClients(t *testing.T) {
	dir, token := secInit(t)
	secEditConfig(t, dir, map[string]any{
		"timeouts.read_header": "1s", "timeouts.body_grace": "1s", "timeouts.idle": "1s",
		"limits.min_body_bytes_per_second": 1024,
	})
	s := secServe(t, dir)
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Each slow client keeps sending for 8 s; the old server (10 s for
	// headers, 2 minutes for bodies and idle connections) would keep it.
	const patience = 8 * time.Second
	t.Run("headers", func(t *testing.T) {
		c := dial(t)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		n := 0
		if !closedWithin(c, patience, func() error { n++; _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", n); return err }) {
			t.Fatal("a client trickling its headers was not disconnected")
		}
	})
	t.Run("body", func(t *testing.T) {
		c := dial(t)
		if _, err := fmt.Fprintf(c, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n{", token); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, patience, func() error { _, err := io.WriteString(c, `"a":1,`); return err }) {
			t.Fatal("a client trickling its body was not disconnected")
		}
	})
	// A connection in its TLS handshake holds a slot that no new
	// connection may take (it is not idle): the header timeout bounds it.
	t.Run("TLS handshake", func(t *testing.T) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !closedWithin(c, patience, nil) {
			t.Fatal("a connection that never finished its TLS handshake was kept")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial(t)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !closedWithin(c, patience, nil) {
			t.Fatal("an idle keep-alive connection was kept")
		}
	})
}

// pgProxy forwards TCP connections to PostgreSQL until stop, which
// closes them all and refuses new ones: the database becomes
// unreachable, as in an outage, without touching the shared server.
type pgProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pgProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestServeDatabaseOutageLogs: while PostgreSQL is unreachable, requests
// keep failing with 503 and the background loops keep retrying, but
// the log stays short: each warning or error message is written a few
// times per interval, then summarised ("log lines suppressed").
func TestServeDatabaseOutageLogs(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	dir, token := secInit(t, "--postgres", u.String())
	s := secServe(t, dir)
	c := s.client()
	get := func(path string) int {
		req, _ := http.NewRequest("GET", "https://"+s.addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/fhir/Patient"); st != http.StatusOK {
		t.Fatalf("before the outage: %d", st)
	}
	proxy.stop()
	outage := time.Now()
	const requests = 300
	var unavailable int
	for range requests {
		if get("/fhir/Patient") == http.StatusServiceUnavailable {
			unavailable++
		}
	}
	s.stop()
	// The intervals of logging.interval (10 s) the outage touched.
	intervals := int(time.Since(outage)/config.DefaultLogInterval) + 1
	if unavailable < requests*9/10 {
		t.Fatalf("%d of %d requests answered 503 during the outage", unavailable, requests)
	}
	perMsg := map[string]int{}
	var problems, summaries int
	sc := bufio.NewScanner(strings.NewReader(s.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || (l.Level != "WARN" && l.Level != "ERROR") {
			continue
		}
		if l.Msg == "log lines suppressed" {
			summaries++
			continue
		}
		problems++
		perMsg[l.Msg]++
	}
	// A request costs at least one error line without the cap.
	if problems >= requests/2 {
		t.Fatalf("%d warning and error lines for %d failed requests: %v", problems, requests, perMsg)
	}
	if summaries == 0 {
		t.Fatalf("no summary of suppressed lines: %v", perMsg)
	}
	// What docs/operations.md promises: at most logging.repeats (10)
	// lines of each message per interval, and one summary per message
	// per interval.
	for m, n := range perMsg {
		if n > config.DefaultLogRepeats*intervals {
			t.Errorf("%q written %d times in %d interval(s), want at most %d an interval", m, n, intervals, config.DefaultLogRepeats)
		}
	}
	if summaries > len(perMsg)*intervals {
		t.Errorf("%d summaries for %d messages in %d interval(s)", summaries, len(perMsg), intervals)
	}
	t.Logf("%d requests during the outage: %d warning/error lines (%d messages), %d summaries: %v", requests, problems, len(perMsg), summaries, perMsg)
}
