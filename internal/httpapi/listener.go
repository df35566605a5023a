package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phivault/phivault/internal/addrlimit"
)

// Connection limits. Every open connection costs a file descriptor, a
// goroutine and buffers, before any request is read. LimitListener
// bounds them:
//
//   - at most Max connections in all. A connection is accepted, then
//     given a slot: a free one, or else the slot of the connection that
//     has been idle the longest (a keep-alive connection between two
//     requests), taken from the address that holds the most
//     connections; that connection is closed. Only when every slot is
//     in a request, or in its TLS handshake and headers (bounded by the
//     header timeout), does the new connection wait for one (open but
//     not served: Max+1 connections at most), and further clients queue
//     in the kernel's accept backlog. Idle connections therefore never
//     keep a new client out;
//   - at most PerAddress from one source (IPv4 address, IPv6 /64): a
//     new connection beyond that takes the slot of the source's own
//     oldest idle connection, or else is closed at once, so one client
//     cannot take every slot. 0 turns it off (behind a reverse proxy
//     every connection comes from the proxy).
//
// Idle connections are known from the http.Server's ConnState hook:
// set Server.ConnState to the listener's ConnState (NewHTTPServer does
// when given the listener). Without it no connection counts as idle.
//
// With the server's timeouts (ServerOptions: header, idle, write; the
// header timeout also bounds the TLS handshake) a held slot is freed
// within seconds unless the client keeps sending at a real pace.

// ConnLimits configures [LimitListener]; zero fields mean no limit.
type ConnLimits struct {
	Max        int
	PerAddress int
	Logger     *slog.Logger // refusals and evictions, as warnings; nil discards
}

// LimitedListener is a listener with [ConnLimits].
type LimitedListener struct {
	net.Listener
	lim       ConnLimits
	mu        sync.Mutex
	open      int                      // connections holding a slot
	perAddr   map[netip.Prefix]int     // slots by source
	idle      map[*limitConn]time.Time // connections between requests, since when
	wake      chan struct{}            // a slot freed or a connection went idle
	done      chan struct{}
	closeOnce sync.Once
	refused   atomic.Int64
	evicted   atomic.Int64
}

// LimitListener wraps ln with the limits. Closing it unblocks a waiting
// Accept.
func LimitListener(ln net.Listener, l ConnLimits) *LimitedListener {
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	return &LimitedListener{
		Listener: ln, lim: l,
		perAddr: make(map[netip.Prefix]int), idle: make(map[*limitConn]time.Time),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// Accept accepts a connection, then gives it a slot (see [ConnLimits]),
// waiting if every slot is busy.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, err := l.admit(c); err != nil {
			return nil, err
		} else if lc != nil {
			return lc, nil
		}
	}
}

// admit gives c a slot; nil (no error) if c was refused and closed.
func (l *LimitedListener) admit(c net.Conn) (*limitConn, error) {
	key := connKey(c.RemoteAddr())
	for {
		var victims []*limitConn
		l.mu.Lock()
		if l.lim.PerAddress > 0 && l.perAddr[key] >= l.lim.PerAddress {
			v := l.oldestIdle(&key)
			if v == nil {
				l.mu.Unlock()
				_ = c.Close()
				l.refused.Add(1)
				l.lim.Logger.Warn("connection refused: its address holds the most connections allowed (limits.max_connections_per_address)",
					slog.String("address", key.String()))
				return nil, nil
			}
			l.releaseLocked(v)
			victims = append(victims, v)
		}
		if l.lim.Max > 0 && l.open >= l.lim.Max {
			if v := l.oldestIdle(nil); v != nil {
				l.releaseLocked(v)
				victims = append(victims, v)
			}
		}
		var lc *limitConn
		if l.lim.Max <= 0 || l.open < l.lim.Max {
			l.open++
			l.perAddr[key]++
			lc = &limitConn{Conn: c, l: l, key: key}
		}
		l.mu.Unlock()
		for _, v := range victims {
			_ = v.Conn.Close()
			l.evicted.Add(1)
			l.lim.Logger.Warn("idle connection closed to give its slot to a new one (limits.max_connections, limits.max_connections_per_address)",
				slog.String("address", v.key.String()))
		}
		if lc != nil {
			return lc, nil
		}
		select {
		case <-l.wake:
		case <-l.done:
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
}

// oldestIdle is the idle connection to close for a new one: of key if
// set, else of the source holding the most connections; the one idle
// the longest. nil if none is idle. l.mu is held.
func (l *LimitedListener) oldestIdle(key *netip.Prefix) *limitConn {
	var best *limitConn
	var bestSince time.Time
	for c, since := range l.idle {
		if key != nil && c.key != *key {
			continue
		}
		if best == nil || l.perAddr[c.key] > l.perAddr[best.key] ||
			l.perAddr[c.key] == l.perAddr[best.key] && since.Before(bestSince) {
			best, bestSince = c, since
		}
	}
	return best
}

// releaseLocked frees c's slot, once. l.mu is held.
func (l *LimitedListener) releaseLocked(c *limitConn) {
	if c.released {
		return
	}
	c.released = true
	delete(l.idle, c)
	l.open--
	if l.perAddr[c.key]--; l.perAddr[c.key] <= 0 {
		delete(l.perAddr, c.key)
	}
	l.signal()
}

func (l *LimitedListener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// ConnState is the http.Server's ConnState hook: it tells which
// connections are idle between requests (HTTP/1.1 keep-alive, HTTP/2
// with no stream open).
func (l *LimitedListener) ConnState(c net.Conn, s http.ConnState) {
	lc := asLimitConn(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle && !lc.released {
		l.idle[lc] = time.Now()
		l.signal()
	} else {
		delete(l.idle, lc)
	}
}

// asLimitConn finds the limitConn under c (a *tls.Conn wraps it).
func asLimitConn(c net.Conn) *limitConn {
	for c != nil {
		if lc, ok := c.(*limitConn); ok {
			return lc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// Open reports the connections holding a slot, in all and by source.
func (l *LimitedListener) Open() (total int, bySource map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bySource = make(map[string]int, len(l.perAddr))
	for k, n := range l.perAddr {
		bySource[k.String()] = n
	}
	return l.open, bySource
}

func (l *LimitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	l        *LimitedListener
	key      netip.Prefix
	released bool // l.mu
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return err
}

// connKey is the per-address bucket of a peer (addrlimit.Key: the IPv4
// address, or the IPv6 /64).
func connKey(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	return addrlimit.Key(ap.Addr())
}

// ServerOptions are the timeouts of the http.Server (see config:
// timeouts.*). Zero fields leave net/http's default (none).
type ServerOptions struct {
	ReadHeader time.Duration // request line and headers; also the TLS handshake
	Idle       time.Duration // keep-alive between requests
	Write      time.Duration // from the end of the header to the end of the answer
	Logger     *slog.Logger  // net/http's own errors, as warnings
	// Conns, if set, is the listener the server accepts from: it is told
	// which connections are idle (Server.ConnState), so a new connection
	// can take an idle one's slot.
	Conns *LimitedListener
}

// maxHeaderBytes bounds the request line and headers (net/http's
// default is 1 MiB; phivault's requests carry a token and a few headers).
const maxHeaderBytes = 64 << 10

// h2MaxStreams bounds concurrent requests on one HTTP/2 connection
// (net/http's default is 250): with the per-address connection limit,
// it caps what one client runs at once.
const h2MaxStreams = 100

// h2WriteByteTimeout closes an HTTP/2 connection on which nothing could
// be written for this long: a client that stops reading its answers
// (slow read) cannot hold the connection's buffers.
const h2WriteByteTimeout = 30 * time.Second

// NewHTTPServer returns the http.Server for h with o's timeouts. The
// body of a request has no absolute read timeout: its pace is enforced
// by the handler (Pace, pace.go), and the handler's time by
// Pace.HandlerTimeout.
func NewHTTPServer(h http.Handler, o ServerOptions) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeader,
		WriteTimeout:      o.Write,
		IdleTimeout:       o.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: h2MaxStreams, WriteByteTimeout: h2WriteByteTimeout},
	}
	if o.Conns != nil {
		srv.ConnState = o.Conns.ConnState
	}
	if o.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}
