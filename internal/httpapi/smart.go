package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/fhir"
)

// SMART access tokens carry this prefix (internal/authn/smart); API
// tokens carry authn.TokenPrefix.
const smartTokenPrefix = "pva_"

// Authorize is the HTML side of the App Launch authorize flow
// (internal/webui/authorize): it mounts its pages under
// /oauth2/authorize and its stylesheet under /oauth2/assets/ on the
// API's mux, so that they run inside the same middleware (request id,
// attempt audit, security headers).
type Authorize interface {
	Routes(mux *http.ServeMux)
}

// smartRoutes mounts the SMART on FHIR authorization server (Backend
// Services): the token, introspection and revocation endpoints and the
// discovery document. The endpoints authenticate their clients
// themselves (private_key_jwt) and bound their bodies.
func (s *Server) smartRoutes(mux *http.ServeMux) {
	mux.Handle("POST /oauth2/token", s.smart.TokenHandler())
	mux.Handle("POST /oauth2/introspect", s.smart.IntrospectHandler())
	mux.Handle("POST /oauth2/revoke", s.smart.RevokeHandler())
	mux.Handle("GET /.well-known/smart-configuration", s.smart.ConfigurationHandler())
	mux.Handle("GET /fhir/.well-known/smart-configuration", s.smart.ConfigurationHandler())
	if s.smart.LaunchEnabled() && s.login != nil {
		// App Launch: the authorize pages and the OpenID Connect
		// endpoints.
		if s.authorizePages != nil {
			s.authorizePages.Routes(mux)
		}
		mux.Handle("GET "+smart.JWKSPath, s.smart.JWKSHandler())
		mux.Handle("GET "+smart.OpenIDConfigurationPath, s.smart.OpenIDConfigurationHandler())
	}
}

// smartPrincipal authenticates a SMART access token. Any failure is the
// same 401 as an unknown API token; a storage outage is returned as is.
func (s *Server) smartPrincipal(r *http.Request, header string) (authn.Principal, bool, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	if s.smart == nil || !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(strings.TrimSpace(tok), smartTokenPrefix) {
		return authn.Principal{}, false, nil
	}
	g, err := s.smart.ValidateAccessToken(r.Context(), strings.TrimSpace(tok))
	if errors.Is(err, smart.ErrInvalidToken) {
		return authn.Principal{}, true, errNoCredential
	}
	if err != nil {
		return authn.Principal{}, true, err
	}
	sc := g.Scopes
	if a := g.Launch; a != nil {
		// An App Launch token acts for the user who approved it, within
		// the granted scopes and the launch patient (launchGate).
		return authn.Principal{Kind: kindSMARTApp, ID: a.UserID, Roles: a.Roles, Scopes: &sc, MFA: true,
			Client: g.ClientID, FHIRUser: a.FHIRUser, Patient: a.Patient}, true, nil
	}
	return authn.Principal{Kind: authn.KindSMARTClient, ID: g.ClientID, Roles: []string{"system"}, Scopes: &sc}, true, nil
}

// errScope is a request outside the token's scopes: 403.
var errScope = errors.New("the access token's scopes do not allow this request")

// scopeGate refuses a request that the principal's SMART scopes do not
// allow. Scopes only ever narrow: a principal without scopes is not
// affected here. Bundles are checked entry by entry in the bundle
// handler; operations that read a whole compartment need read and
// search on every type.
func scopeGate(p authn.Principal, r *http.Request) error {
	if p.Scopes == nil || p.Kind == kindSMARTApp {
		return nil // App Launch tokens: launchGate
	}
	typ, inter, ok := interactionOf(r)
	if !ok {
		return nil // the bundle handler checks each entry
	}
	if !allowsRequest(*p.Scopes, scope.System, typ, inter) {
		return errScope
	}
	return nil
}

// allowsRequest reports whether set allows, in context c, the
// interaction inter on typ as interactionOf returned them. typ "*" is a
// request over every type: system history needs inter (search) on every
// type; $everything, which reads a whole compartment, needs read and
// search on every type.
func allowsRequest(set scope.Set, c scope.Context, typ string, inter scope.Interaction) bool {
	if typ == "*" && inter == scope.Read {
		return set.Allows(c, "*", scope.Read) && set.Allows(c, "*", scope.Search)
	}
	return set.Allows(c, typ, inter)
}

// interactionOf maps a FHIR request to the resource type and SMART
// interaction it needs; ok=false for the base URL (Bundles). SMART App
// Launch 2.0 ("SMART v2 scopes"): "r" covers read, vread and instance
// history; "s" covers type and system search and type and system
// history.
func interactionOf(r *http.Request) (typ string, i scope.Interaction, ok bool) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/fhir"), "/"), "/")
	if len(parts) == 0 || parts[0] == "" {
		return "", 0, false
	}
	if bulkPath(parts) {
		return "", 0, false // bulk.go narrows _type to the scopes itself
	}
	if parts[0] == "_history" || parts[0] == "$meta" {
		return "*", scope.Search, true // system history, system $meta
	}
	typ = parts[0]
	switch {
	case len(parts) >= 3 && (parts[2] == "$everything"):
		return "*", scope.Read, true
	case len(parts) >= 3 && parts[2] == "$erase":
		return typ, scope.Delete, true
	case len(parts) >= 3 && (parts[2] == "$meta-add" || parts[2] == "$meta-delete"):
		return typ, scope.Update, true
	case len(parts) >= 3 && parts[2] == "$meta":
		return typ, scope.Read, true
	case len(parts) == 2 && parts[1] == "$meta":
		return typ, scope.Search, true // the labels in use across the type
	case len(parts) >= 2 && parts[1] == "_search":
		return typ, scope.Search, true
	case len(parts) >= 2 && parts[1] == "_history":
		return typ, scope.Search, true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(parts) == 1 {
			return typ, scope.Search, true
		}
		return typ, scope.Read, true
	case http.MethodPost:
		return typ, scope.Create, true
	case http.MethodPut, http.MethodPatch:
		return typ, scope.Update, true
	case http.MethodDelete:
		return typ, scope.Delete, true
	}
	return typ, scope.Read, true
}

// bundleScopeGate checks every entry of a batch or transaction against
// the principal's scopes before anything runs.
func bundleScopeGate(p authn.Principal, b fhir.Resource) error {
	if p.Scopes == nil {
		return nil
	}
	ctx := scope.System
	if p.Kind == kindSMARTApp {
		if compartmentOf(p) != "" {
			return errScope // launchGate refuses these first; kept as a second lock
		}
		ctx = scope.User
	}
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		req, _ := m["request"].(map[string]any)
		method, _ := req["method"].(string)
		u, _ := req["url"].(string)
		path, query, _ := strings.Cut(u, "?")
		parts := strings.Split(strings.Trim(path, "/"), "/")
		typ := parts[0]
		var i scope.Interaction
		switch method {
		case http.MethodGet:
			i = scope.Read
			if len(parts) == 1 || query != "" {
				i = scope.Search
			}
		case http.MethodPost:
			i = scope.Create
		case http.MethodPut:
			i = scope.Update
		case http.MethodDelete:
			i = scope.Delete
		default:
			continue // refused by the record layer
		}
		if !p.Scopes.Allows(ctx, typ, i) {
			return errScope
		}
	}
	return nil
}
