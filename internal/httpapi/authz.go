package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
)

// Authorization (step 6 of the middleware order in server.go): after
// authentication and the SMART scope gate, every /fhir request gets the
// principal's authz guard. The record consults it wherever it learns
// what the request touches (ADR 0011): before a write, after opening a
// resource, and for a search as a narrowing filter inside the query.
// Without an Authorizer the FHIR API answers 503 (fail closed).

type guardKey struct{}

// authorize attaches the principal's guard to the request.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if s.authz == nil || !ok {
			s.log.ErrorContext(r.Context(), "no authorizer: refusing the request", slog.String("request_id", web.RequestID(r.Context())))
			w.Header().Set("Retry-After", "1")
			writeOutcome(w, r, httpError(http.StatusServiceUnavailable, "transient", "the service is temporarily unavailable; retry later"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), guardKey{}, s.authz.For(p))))
	})
}

// denyAll is the guard of a request that somehow bypassed authorize:
// every decision fails (fail closed).
type denyAll struct{}

var errNoGuard = errors.New("no authorization guard on the request")

func (denyAll) Decide(context.Context, authz.Action, authz.Target) (authz.Decision, error) {
	return authz.Decision{}, errNoGuard
}

func (denyAll) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{}, errNoGuard
}

// guardFrom returns the request's guard (denyAll when missing).
func guardFrom(ctx context.Context) record.Guard {
	if g, ok := ctx.Value(guardKey{}).(*authz.Bound); ok && g != nil {
		return g
	}
	return denyAll{}
}

// maxBreakGlassBody bounds a $break-glass Parameters body.
const maxBreakGlassBody = 8 << 10

// breakGlass is POST /fhir/Patient/{id}/$break-glass.
func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if s.glass == nil {
		return httpError(http.StatusServiceUnavailable, "transient", "break-the-glass is not available")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBreakGlassBody)
	b, err := s.readBody(r)
	if err != nil {
		return err
	}
	req, err := authz.ParseBreakGlass(b)
	if err != nil {
		return &web.Error{Status: http.StatusBadRequest, Code: "invalid", Msg: err.Error(), Err: err}
	}
	p, _ := PrincipalFrom(r.Context())
	c := s.caller(r)
	c.Agent.Session = p.SessionID
	g, _, err := s.glass.Open(r.Context(), p, c.Agent, c.RequestID, id, req)
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound):
		return httpError(http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, authz.ErrDenied):
		return &web.Error{Status: http.StatusForbidden, Code: "forbidden", Msg: "break-the-glass is not permitted for this account", Err: err}
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, audit.ErrUnavailable):
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the service is temporarily unavailable; retry later", Err: err}
	default:
		return &web.Error{Status: http.StatusForbidden, Code: "forbidden", Msg: "access denied: the request could not be authorized", Err: err}
	}
	writeJSON(w, r, http.StatusCreated, map[string]any{
		"resourceType": "Parameters",
		"parameter": []any{
			map[string]any{"name": "grant", "valueString": g.ID},
			map[string]any{"name": "patient", "valueReference": map[string]string{"reference": g.Patient}},
			map[string]any{"name": "expires", "valueInstant": g.Expires.UTC().Format(time.RFC3339)},
			map[string]any{"name": "purpose", "valueCode": "ETREAT"},
		},
	})
	return nil
}

// Reviews is the privacy officer's desk behind /admin/api/break-glass
// and /admin/api/alerts (authz.Desk).
type Reviews interface {
	List(ctx context.Context, open bool, limit int) ([]authz.Review, error)
	Close(ctx context.Context, agent audit.Agent, requestID, id, outcome, note string) (authz.Review, error)
	Alerts(ctx context.Context, limit int) ([]authz.Alert, error)
}

// mayReview reports whether p may use the review desk: a privacy
// officer with a verified second factor, or (TEMPORARY, as for account
// administration) an API token with role system.
func mayReview(p authn.Principal) bool {
	switch {
	case p.Kind == authn.KindSession && !p.MFA:
		return false
	case slices.Contains(p.Roles, string(identity.RolePrivacyOfficer)):
		return true
	case p.Kind == authn.KindToken && slices.Contains(p.Roles, string(identity.RoleSystem)):
		return true
	}
	return false
}

// reviewRoutes mounts the review desk on the admin mux.
func (a *adminAPI) reviewRoutes(admin *http.ServeMux) {
	admin.Handle("GET /admin/api/break-glass/reviews", a.reviewer(a.listReviews))
	admin.Handle("POST /admin/api/break-glass/reviews/{id}/close", a.reviewer(a.closeReview))
	admin.Handle("GET /admin/api/alerts", a.reviewer(a.listAlerts))
}

func (a *adminAPI) reviewer(h handlerFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		if a.s.reviews == nil {
			return web.New(http.StatusServiceUnavailable, "the review desk is not available", errors.New("no Reviews configured"))
		}
		p, err := a.principal(r)
		if err != nil {
			return err
		}
		if !mayReview(p) {
			if err := a.accounts.Denied(r.Context(), agent(p, r), ""); err != nil {
				return err
			}
			return web.New(http.StatusForbidden, "this requires the privacy-officer role", errors.New("principal lacks privacy-officer"))
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, agent(p, r))))
	})
}

type reviewJSON struct {
	ID       string     `json:"id"`
	Grant    string     `json:"grant"`
	User     string     `json:"user"`
	Patient  string     `json:"patient"`
	Reason   string     `json:"reason"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	Closed   bool       `json:"closed"`
	ClosedBy string     `json:"closed_by,omitempty"`
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	Outcome  string     `json:"outcome,omitempty"`
}

func toReviewJSON(r authz.Review) reviewJSON {
	out := reviewJSON{ID: r.ID, Grant: r.GrantID, User: r.UserID, Patient: r.Patient, Reason: r.Reason, Created: r.Created, Expires: r.Expires, Closed: r.Closed, ClosedBy: r.ClosedBy, Outcome: r.Outcome}
	if r.Closed {
		t := r.ClosedAt
		out.ClosedAt = &t
	}
	return out
}

func (a *adminAPI) listReviews(w http.ResponseWriter, r *http.Request) error {
	open := r.URL.Query().Get("state") != "all"
	rs, err := a.s.reviews.List(r.Context(), open, 200)
	if err != nil {
		return err
	}
	out := make([]reviewJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, toReviewJSON(x))
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"reviews": out})
	return nil
}

func (a *adminAPI) closeReview(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Outcome string `json:"outcome"`
		Note    string `json:"note"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Outcome != "appropriate" && body.Outcome != "inappropriate" {
		return web.New(http.StatusBadRequest, `outcome must be "appropriate" or "inappropriate"`, nil)
	}
	rv, err := a.s.reviews.Close(r.Context(), actor(r), web.RequestID(r.Context()), r.PathValue("id"), body.Outcome, body.Note)
	switch {
	case errors.Is(err, authz.ErrBadRequest):
		return web.New(http.StatusBadRequest, "the note must be text of at most 2,000 characters", err)
	case errors.Is(err, storage.ErrNotFound):
		return web.New(http.StatusNotFound, "no such review", err)
	case errors.Is(err, storage.ErrConflict):
		return web.New(http.StatusConflict, "the review is already closed", err)
	case err != nil:
		return err
	}
	writeAPIJSON(w, http.StatusOK, toReviewJSON(rv))
	return nil
}

func (a *adminAPI) listAlerts(w http.ResponseWriter, r *http.Request) error {
	as, err := a.s.reviews.Alerts(r.Context(), 200)
	if err != nil {
		return err
	}
	type alertJSON struct {
		ID       string    `json:"id"`
		Kind     string    `json:"kind"`
		Priority string    `json:"priority"`
		User     string    `json:"user"`
		Patient  string    `json:"patient"`
		Ref      string    `json:"ref"`
		Created  time.Time `json:"created"`
	}
	out := make([]alertJSON, 0, len(as))
	for _, x := range as {
		out = append(out, alertJSON{x.ID, x.Kind, x.Priority, x.UserID, x.Patient, x.Ref, x.Created})
	}
	b, _ := json.Marshal(out)
	writeAPIJSON(w, http.StatusOK, map[string]json.RawMessage{"alerts": b})
	return nil
}
