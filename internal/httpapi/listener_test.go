package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/httpapi"
)

// limServer is a real http.Server on a LimitListener (127.0.0.1).
type limServer struct {
	lim  *httpapi.LimitedListener
	addr string
}

func startLimServer(t *testing.T, l httpapi.ConnLimits) *limServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := httpapi.LimitListener(ln, l)
	srv := httpapi.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), httpapi.ServerOptions{ReadHeader: 30 * time.Second, Idle: time.Minute, Conns: lim})
	go func() { _ = srv.Serve(lim) }()
	s := &limServer{lim: lim, addr: ln.Addr().String()}
	t.Cleanup(func() {
		srv.Close()
		s.waitOpen(t, 0, nil)
	})
	return s
}

// keepAlive opens a connection from the loopback address from
// (127.0.0.2 … on Linux), makes one request and leaves the connection
// open and idle.
func (s *limServer) keepAlive(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Skipf("dialing from %s (needs the Linux loopback /8): %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := s.get(c); err != nil {
		t.Fatalf("a request from %s: %v", from, err)
	}
	return c
}

func (s *limServer) get(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // the test's patience, not an assertion
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
		return fmt.Errorf("status %d, %q", resp.StatusCode, b)
	}
	return nil
}

// waitOpen waits until the listener counts total slots (and, if set,
// these by source), failing with the counts after 10 s.
func (s *limServer) waitOpen(t *testing.T, total int, bySource map[string]int) {
	t.Helper()
	var n int
	var by map[string]int
	for range 200 {
		n, by = s.lim.Open()
		if n == total && (bySource == nil && (total > 0 || len(by) == 0) || fmt.Sprint(by) == fmt.Sprint(bySource)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("slots held: %d %v, want %d %v", n, by, total, bySource)
}

// closed reports whether the server has closed c.
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond)) // an evicted connection is closed before the new one is served
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// TestListenerIdleConnectionsGiveWay: idle keep-alive connections from
// several addresses holding every slot do not keep a new client out: it
// takes the slot of an idle one (from the address holding the most),
// and the slot counts stay exact and return to zero.
func TestListenerIdleConnectionsGiveWay(t *testing.T) {
	t.Run("every slot idle", func(t *testing.T) {
		s := startLimServer(t, httpapi.ConnLimits{Max: 8, PerAddress: 2})
		var held []net.Conn
		for i := 2; i <= 5; i++ {
			for range 2 {
				held = append(held, s.keepAlive(t, fmt.Sprintf("127.0.0.%d", i)))
			}
		}
		s.waitOpen(t, 8, nil)
		// Before the fix the new client waited in the accept queue until
		// an idle connection timed out.
		s.keepAlive(t, "127.0.0.9")
		n := 0
		for _, c := range held {
			if closed(c) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d idle connections were closed for the new one, want 1", n)
		}
		s.waitOpen(t, 8, nil)
		for _, c := range held {
			c.Close()
		}
		s.waitOpen(t, 1, map[string]int{"127.0.0.9/32": 1})
	})
	t.Run("from the address holding the most", func(t *testing.T) {
		s := startLimServer(t, httpapi.ConnLimits{Max: 8})
		for range 5 {
			s.keepAlive(t, "127.0.0.2")
		}
		for range 3 {
			s.keepAlive(t, "127.0.0.3")
		}
		s.waitOpen(t, 8, nil)
		s.keepAlive(t, "127.0.0.4")
		s.waitOpen(t, 8, map[string]int{"127.0.0.2/32": 4, "127.0.0.3/32": 3, "127.0.0.4/32": 1})
	})
	t.Run("an address at its share", func(t *testing.T) {
		s := startLimServer(t, httpapi.ConnLimits{Max: 8, PerAddress: 2})
		a := s.keepAlive(t, "127.0.0.2")
		b := s.keepAlive(t, "127.0.0.2")
		other := s.keepAlive(t, "127.0.0.3")
		// A third connection of 127.0.0.2 takes one of its own idle slots.
		s.keepAlive(t, "127.0.0.2")
		if closed(a) == closed(b) {
			t.Fatal("want exactly one of the address's idle connections closed for its new one")
		}
		if closed(other) {
			t.Fatal("another address's connection was closed")
		}
		s.waitOpen(t, 3, map[string]int{"127.0.0.2/32": 2, "127.0.0.3/32": 1})
	})
}
