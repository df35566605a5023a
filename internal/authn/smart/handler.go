package smart

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/web"
)

// handlerFunc is a handler that returns its error; serve maps it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// TokenHandler serves POST TokenPath: grant_type=client_credentials with
// a private_key_jwt client assertion (SMART Backend Services).
func (s *Server) TokenHandler() http.Handler { return s.serve(s.token) }

// IntrospectHandler serves POST IntrospectPath (RFC 7662). The caller
// authenticates like at the token endpoint and may introspect only its
// own tokens: any other token is reported inactive.
func (s *Server) IntrospectHandler() http.Handler { return s.serve(s.introspect) }

// RevokeHandler serves POST RevokePath (RFC 7009). The caller
// authenticates like at the token endpoint and may revoke only its own
// tokens; the answer is 200 whether or not the token existed.
func (s *Server) RevokeHandler() http.Handler { return s.serve(s.revokeHandler) }

// serve checks method and content type, bounds and parses the form, runs
// h, and writes an RFC 6749 §5.2 error if it fails. Responses are never
// cached (RFC 6749 §5.1).
func (s *Server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		err := parseForm(w, r)
		if err == nil {
			err = h(w, r)
		}
		if err == nil {
			return
		}
		e := httpError(err)
		level := slog.LevelInfo
		if e.Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "oauth request refused",
			slog.String("path", r.URL.Path), slog.String("error", e.Code), slog.String("detail", err.Error()))
		web.OAuth(w, r, e)
	})
}

// parseForm reads at most MaxBodyBytes of a form body. Parameters in the
// URL query are ignored: credentials do not belong there. A repeated
// parameter is refused (RFC 6749 §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return oauthErr(ErrInvalidRequest, "the body must be application/x-www-form-urlencoded", nil)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return oauthErr(ErrInvalidRequest, "request body too large", nil)
		}
		return oauthErr(ErrInvalidRequest, "malformed request body", nil)
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return oauthErr(ErrInvalidRequest, "parameter "+strconv.Quote(truncate(k, 32))+" is repeated", nil)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	ctx, form := r.Context(), r.PostForm
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "authorization_code":
		return s.authorizationCode(w, r)
	case "refresh_token":
		return s.refreshToken(w, r)
	case "":
		return oauthErr(ErrInvalidRequest, "grant_type is required", nil)
	default:
		return oauthErr(ErrUnsupportedGrantType, "grant_type must be client_credentials, authorization_code or refresh_token", nil)
	}
	c, err := s.auth.authenticate(ctx, form)
	if err != nil {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, "", err)
	}
	if c.Type != Backend {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrUnauthorizedClient, "client_credentials is for backend clients", nil))
	}
	requested, err := scope.ParseSet(form.Get("scope"))
	if err != nil {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrInvalidScope, "the scope parameter is malformed or too large", err))
	}
	if requested.Empty() {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrInvalidScope, "scope is required", nil))
	}
	granted := scope.Intersect(c.Scopes, requested)
	if granted.Empty() {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrInvalidScope, "none of the requested scopes is registered for this client", nil))
	}
	// Audit first: if the event cannot be recorded, no token exists.
	if err := s.rec.record(ctx, r, audit.ActionTokenCreate, audit.OutcomeSuccess, c.ID, http.StatusOK); err != nil {
		return err
	}
	secret, t, err := s.tokens.issue(ctx, c.ID, granted)
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: secret,
		TokenType:   "Bearer",
		ExpiresIn:   int64(t.Expires.Sub(t.Issued).Seconds()),
		Scope:       granted.String(),
	})
	return nil
}

type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	// App Launch tokens only: the user, their FHIR resource and the
	// launch patient (SMART App Launch "token introspection").
	Sub      string `json:"sub,omitempty"`
	FHIRUser string `json:"fhirUser,omitempty"`
	Patient  string `json:"patient,omitempty"`
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) error {
	ctx, form := r.Context(), r.PostForm
	c, err := s.auth.authenticate(ctx, form)
	if err != nil {
		return s.rec.deny(ctx, r, ActionTokenIntrospect, "", err)
	}
	tok := form.Get("token")
	if tok == "" {
		return oauthErr(ErrInvalidRequest, "token is required", nil)
	}
	resp := introspection{}
	g, err := s.ValidateAccessToken(ctx, tok)
	switch {
	case err == nil && g.ClientID == c.ID:
		h := hashToken(tok)
		issued := g.Expires.Add(-s.opts.AccessTokenTTL)
		if ct, ok := s.tokens.cached(h, s.opts.Now()); ok {
			issued = ct.tok.Issued
		}
		resp = introspection{Active: true, Scope: g.Scopes.String(), ClientID: g.ClientID, TokenType: "Bearer",
			Exp: g.Expires.Unix(), Iat: issued.Unix()}
		if a := g.Launch; a != nil {
			resp.Sub, resp.Patient = a.UserID, a.Patient
			if a.FHIRUser != "" {
				resp.FHIRUser = s.FHIRBaseURL() + "/" + a.FHIRUser
			}
		}
	case err == nil, errors.Is(err, ErrInvalidToken):
	default:
		return oauthErr(errServer, "", err)
	}
	if err := s.rec.record(ctx, r, ActionTokenIntrospect, audit.OutcomeSuccess, c.ID, http.StatusOK); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) revokeHandler(w http.ResponseWriter, r *http.Request) error {
	ctx, form := r.Context(), r.PostForm
	var c Client
	var err error
	if s.opts.Launch != nil && form.Get("client_assertion") == "" && form.Get("client_assertion_type") == "" {
		// A public app revokes with its client_id (RFC 7009 §2.1): the
		// token itself is the proof, and it must be this client's.
		c, err = s.auth.launchClient(ctx, form)
	} else {
		c, err = s.auth.authenticate(ctx, form)
	}
	if err != nil {
		return s.rec.deny(ctx, r, ActionTokenRevoke, "", err)
	}
	tok := form.Get("token")
	if tok == "" {
		return oauthErr(ErrInvalidRequest, "token is required", nil)
	}
	if s.opts.Launch != nil && len(tok) == secretLen && tok[:len(RefreshTokenPrefix)] == RefreshTokenPrefix {
		// Revoking a refresh token ends its authorization, with every
		// access token issued from it (RFC 7009 §2.1 "SHOULD").
		if err := s.families.revokeRefresh(ctx, r, c.ID, tok); err != nil {
			return err
		}
	} else if _, err := s.tokens.revoke(ctx, c.ID, tok); err != nil {
		return oauthErr(errServer, "", err)
	}
	if err := s.rec.record(ctx, r, ActionTokenRevoke, audit.OutcomeSuccess, c.ID, http.StatusOK); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
