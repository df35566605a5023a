package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

func TestClientAddr(t *testing.T) {
	tests := []struct {
		remote   string
		want     netip.Addr
		wantText string
	}{
		{"192.0.2.1:1234", netip.MustParseAddr("192.0.2.1"), "192.0.2.1"},
		{"[2001:db8::1]:443", netip.MustParseAddr("2001:db8::1"), "2001:db8::1"},
		{"[::ffff:192.0.2.7]:443", netip.MustParseAddr("192.0.2.7"), "::ffff:192.0.2.7"},
		{"garbage", netip.Addr{}, "garbage"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if got := ClientAddr(r); got != tt.want {
			t.Errorf("ClientAddr(%q) = %v, want %v", tt.remote, got, tt.want)
		}
		if got := ClientIP(r); got != tt.wantText {
			t.Errorf("ClientIP(%q) = %q, want %q", tt.remote, got, tt.wantText)
		}
	}
}

func TestRequestID(t *testing.T) {
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("RequestID outside a request = %q, want empty", got)
	}
	a, b := NewRequestID(), NewRequestID()
	if len(a) != 24 || a == b {
		t.Errorf("NewRequestID: %q, %q: want 24 hex characters, distinct", a, b)
	}
	if got := RequestID(WithRequestID(context.Background(), a)); got != a {
		t.Errorf("RequestID = %q, want %q", got, a)
	}
}

func TestSessionCookie(t *testing.T) {
	w := httptest.NewRecorder()
	SetSessionCookie(w, session.Secret("pvs_secret"))
	ClearSessionCookie(w)
	set := w.Result().Header.Values("Set-Cookie")
	if len(set) != 2 {
		t.Fatalf("Set-Cookie: %q, want two", set)
	}
	for i, want := range [][]string{
		{SessionCookie + "=pvs_secret", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"},
		{SessionCookie + "=", "Path=/", "Max-Age=0", "HttpOnly", "Secure", "SameSite=Strict"},
	} {
		for _, attr := range want {
			if !strings.Contains(set[i], attr) {
				t.Errorf("Set-Cookie %q lacks %q", set[i], attr)
			}
		}
		if strings.Contains(strings.ToLower(set[i]), "domain=") {
			t.Errorf("Set-Cookie %q has a Domain: the __Host- prefix forbids it", set[i])
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := SessionToken(r); ok {
		t.Error("SessionToken without a cookie: ok")
	}
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: "pvs_x"})
	if v, ok := SessionToken(r); !ok || v != "pvs_x" {
		t.Errorf("SessionToken = %q, %v", v, ok)
	}
}

func TestSecurityHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	SecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	for k, v := range map[string]string{
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		"X-Content-Type-Options":    "nosniff",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestNotes(t *testing.T) {
	// Outside a request every note is a no-op.
	bg := context.Background()
	NoteAgent(bg, audit.Agent{User: "u"})
	NoteRefusal(bg, "csrf")
	NoteBackendFailure(bg, storage.ErrUnavailable)
	NoteRoute(httptest.NewRequest(http.MethodGet, "/", nil))

	ctx, n := WithNotes(bg)
	if got := n.Snapshot(); got.Authed || got.Backend || got.Route != "" || len(got.Policies) != 0 {
		t.Fatalf("fresh notes: %+v", got)
	}
	NoteAgent(ctx, audit.Agent{User: "u1"})
	NoteRefusal(ctx, "csrf")
	NoteRefusal(ctx, "mfa")
	NoteBackendFailure(ctx, errors.New("a caller's mistake")) // ignored: must stay charged
	if n.Snapshot().Backend {
		t.Error("an ordinary error was noted as a backend failure")
	}
	NoteBackendFailure(ctx, fmt.Errorf("checking: %w", audit.ErrUnavailable))
	r := httptest.NewRequest(http.MethodGet, "/x/1", nil).WithContext(ctx)
	r.Pattern = "GET /x/{id}"
	NoteRoute(r)
	got := n.Snapshot()
	if !got.Authed || got.Agent.User != "u1" || !got.Backend || got.Route != "GET /x/{id}" || !slices.Equal(got.Policies, []string{"csrf", "mfa"}) {
		t.Errorf("notes: %+v", got)
	}
	got.Policies[0] = "changed"
	if n.Snapshot().Policies[0] != "csrf" {
		t.Error("Snapshot shares its policies with the notes")
	}
}
