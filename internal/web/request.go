package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strings"
)

// ctxKey types the kernel's context keys; each has one accessor.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	notesKey
)

// NewRequestID returns a fresh request id: 12 random bytes in hex, enough
// that ids never collide within the log's lifetime.
func NewRequestID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// WithRequestID returns ctx carrying id as the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id assigned by the outermost middleware
// (httpapi's withRequest); "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ClientAddr is the peer address of r; the zero Addr when RemoteAddr does
// not parse. Forwarded headers are not trusted: no proxy configuration
// exists yet, and trusting them would let any client pick its own
// rate-limit bucket.
func ClientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ClientIP is the host part of r's RemoteAddr as text, for audit agents
// (forwarded headers are not trusted, as for ClientAddr).
func ClientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
