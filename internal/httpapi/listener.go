package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connection limits. Every open connection costs a file descriptor, a
// goroutine and buffers, before any request is read. LimitListener
// bounds them:
//
//   - at most Max connections in all: at the limit Accept waits until
//     one closes, so further clients queue in the kernel's accept
//     backlog instead of exhausting the process (the model of
//     golang.org/x/net/netutil.LimitListener);
//   - at most PerAddress from one source (IPv4 address, IPv6 /64): a new
//     connection beyond that is closed at once, so one client cannot
//     take every slot. 0 turns it off (behind a reverse proxy every
//     connection comes from the proxy).
//
// With the server's timeouts (ServerOptions: header, idle, write; the
// header timeout also bounds the TLS handshake) a held slot is freed
// within seconds unless the client keeps sending at a real pace.

// ConnLimits configures [LimitListener]; zero fields mean no limit.
type ConnLimits struct {
	Max        int
	PerAddress int
	Logger     *slog.Logger // refusals, as warnings; nil discards
}

// LimitListener wraps ln with the limits. Closing it unblocks a waiting
// Accept.
func LimitListener(ln net.Listener, l ConnLimits) net.Listener {
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	ll := &limitListener{Listener: ln, lim: l, perAddr: make(map[netip.Prefix]int), done: make(chan struct{})}
	if l.Max > 0 {
		ll.sem = make(chan struct{}, l.Max)
	}
	return ll
}

type limitListener struct {
	net.Listener
	lim       ConnLimits
	sem       chan struct{} // nil: no total limit
	mu        sync.Mutex
	perAddr   map[netip.Prefix]int
	done      chan struct{}
	closeOnce sync.Once
	refused   atomic.Int64
}

func (l *limitListener) acquire() bool {
	if l.sem == nil {
		return true
	}
	select {
	case l.sem <- struct{}{}:
		return true
	case <-l.done:
		return false
	}
}

func (l *limitListener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

// Accept waits for a free slot, then for a connection from an address
// under its own limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if !l.acquire() {
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		key := connKey(c.RemoteAddr())
		if l.lim.PerAddress > 0 {
			l.mu.Lock()
			over := l.perAddr[key] >= l.lim.PerAddress
			if !over {
				l.perAddr[key]++
			}
			l.mu.Unlock()
			if over {
				_ = c.Close()
				l.release()
				l.refused.Add(1)
				l.lim.Logger.Warn("connection refused: its address holds the most connections allowed (limits.max_connections_per_address)",
					slog.String("address", key.String()))
				continue
			}
		}
		return &limitConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) done1(key netip.Prefix) {
	if l.lim.PerAddress > 0 {
		l.mu.Lock()
		if l.perAddr[key]--; l.perAddr[key] <= 0 {
			delete(l.perAddr, key)
		}
		l.mu.Unlock()
	}
	l.release()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	key  netip.Prefix
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.done1(c.key) })
	return err
}

// connKey is the per-address bucket of a peer: the IPv4 address, or the
// IPv6 /64 (one host may own a whole /64).
func connKey(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	addr := ap.Addr().Unmap().WithZone("")
	if addr.Is4() {
		return netip.PrefixFrom(addr, 32)
	}
	p, _ := addr.Prefix(64)
	return p
}

// ServerOptions are the timeouts of the http.Server (see config:
// timeouts.*). Zero fields leave net/http's default (none).
type ServerOptions struct {
	ReadHeader time.Duration // request line and headers; also the TLS handshake
	Idle       time.Duration // keep-alive between requests
	Write      time.Duration // from the end of the header to the end of the answer
	Logger     *slog.Logger  // net/http's own errors, as warnings
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
	if o.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}
