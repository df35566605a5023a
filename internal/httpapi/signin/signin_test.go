package signin_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/web"
)

// TestSessionEndpointsTakeTheMountersAuthentication: an endpoint that
// acts on the caller's sessions answers the refusal of the Principal
// function as it is, refuses a principal that is not a session (a
// bearer token), and answers a backend failure 503, all in the API's
// JSON error form, before the login service is reached.
func TestSessionEndpointsTakeTheMountersAuthentication(t *testing.T) {
	tests := []struct {
		name       string
		principal  func(*http.Request) (authn.Principal, error)
		wantStatus int
		wantBody   string
	}{
		{
			name: "refused by the mounting API",
			principal: func(*http.Request) (authn.Principal, error) {
				return authn.Principal{}, &web.Error{Status: http.StatusForbidden, Msg: "csrf refused", Err: errors.New("csrf")}
			},
			wantStatus: http.StatusForbidden, wantBody: `{"error":"csrf refused"}`,
		},
		{
			name: "a bearer token is not a session",
			principal: func(*http.Request) (authn.Principal, error) {
				return authn.Principal{ID: "u1", Kind: authn.KindToken}, nil
			},
			wantStatus: http.StatusUnauthorized, wantBody: `{"error":"authentication required: log in"}`,
		},
		{
			name: "backend failure",
			principal: func(*http.Request) (authn.Principal, error) {
				return authn.Principal{}, errors.New("database down")
			},
			wantStatus: http.StatusServiceUnavailable, wantBody: `{"error":"the service is temporarily unavailable; retry later"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signin.New(signin.Options{Logger: slog.New(slog.DiscardHandler), Principal: tt.principal})
			mux := http.NewServeMux()
			h.Routes(mux)
			for _, req := range []*http.Request{
				httptest.NewRequest(http.MethodGet, "/auth/sessions", nil),
				httptest.NewRequest(http.MethodPost, "/auth/logout", nil),
				httptest.NewRequest(http.MethodDelete, "/auth/sessions/x", nil),
				httptest.NewRequest(http.MethodGet, "/auth/passkeys", nil),
			} {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				body, _ := io.ReadAll(rec.Body)
				if rec.Code != tt.wantStatus || strings.TrimSpace(string(body)) != tt.wantBody {
					t.Errorf("%s %s = %d %s, want %d %s", req.Method, req.URL.Path, rec.Code, body, tt.wantStatus, tt.wantBody)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("%s %s: Content-Type %q", req.Method, req.URL.Path, ct)
				}
			}
		})
	}
}

// TestNoSSORoutesWithoutSSO: without an SSO relying party the
// enterprise sign-in routes are not mounted.
func TestNoSSORoutesWithoutSSO(t *testing.T) {
	h := signin.New(signin.Options{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	h.Routes(mux)
	if _, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, "/auth/oidc/start", nil)); pattern != "" {
		t.Errorf("/auth/oidc/start is routed (%q) without SSO", pattern)
	}
	if _, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, signin.WebAuthnScriptPath, nil)); pattern == "" {
		t.Errorf("%s is not routed", signin.WebAuthnScriptPath)
	}
}
