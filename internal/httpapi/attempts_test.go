package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/web"
)

// recorder is a hand-written AuditRecorder that keeps the events it is
// given, or fails while down is set.
type recorder struct {
	mu   sync.Mutex
	evs  []audit.Event
	down bool
}

func (r *recorder) Record(_ context.Context, ev audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errors.New("injected: audit log down")
	}
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.evs...)
}

// middleware returns the outer stack (withRequest and the security
// headers) around h, with rec as the audit recorder.
func middleware(rec *recorder, timeout time.Duration, h http.Handler) http.Handler {
	s := New(Options{Logger: slog.New(slog.DiscardHandler), Now: time.Now, LogAudit: rec,
		Pace: Pace{HandlerTimeout: timeout}})
	return s.withRequest(web.SecurityHeaders(h))
}

const secretBody = `{"resourceType":"Patient","name":[{"family":"Quorvalenski"}]}`

// TestAttemptEventForEveryOutcome: requests that no handler audits get
// a generic event with the outcome of their status, before the status
// is sent: a panic (500), a handler timeout (503), a handler that writes
// nothing (200), an explicit refusal.
func TestAttemptEventForEveryOutcome(t *testing.T) {
	cases := []struct {
		name    string
		path    string
		h       http.HandlerFunc
		status  int
		action  audit.Action
		outcome audit.Outcome
	}{
		{"panic", "/fhir/Patient/p1", func(http.ResponseWriter, *http.Request) { panic("boom") },
			http.StatusInternalServerError, audit.ActionRead, audit.OutcomeError},
		{"handler timeout", "/fhir/Patient", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // a storage call waiting on a lock, say
			w.Header().Set("Retry-After", "1")
			writeOutcome(w, r, httpError(http.StatusServiceUnavailable, "transient", "timed out"))
		}, http.StatusServiceUnavailable, audit.ActionSearch, audit.OutcomeError},
		{"nothing written", "/auth/sessions", func(http.ResponseWriter, *http.Request) {},
			http.StatusOK, audit.ActionRequest, audit.OutcomeSuccess},
		{"refused", "/admin/api/users", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
		}, http.StatusUnauthorized, audit.ActionRequest, audit.OutcomeDenied},
		{"flushed before a status", "/portal/access", func(w http.ResponseWriter, r *http.Request) {
			_ = http.NewResponseController(w).Flush()
		}, http.StatusOK, audit.ActionRequest, audit.OutcomeSuccess},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := middleware(rec, 50*time.Millisecond, tt.h)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if w.Code != tt.status {
				t.Fatalf("status: got %d, want %d", w.Code, tt.status)
			}
			evs := rec.events()
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1: %+v", len(evs), evs)
			}
			ev := evs[0]
			if ev.Action != tt.action || ev.Outcome != tt.outcome || ev.Status != tt.status || ev.RequestID != w.Header().Get("X-Request-Id") {
				t.Fatalf("event: got %+v, want %s/%s status %d with the request id", ev, tt.action, tt.outcome, tt.status)
			}
			if ev.Agent.Address == "" {
				t.Errorf("the event has no source address: %+v", ev)
			}
		})
	}
}

// TestAttemptNotDuplicated: a request whose handler recorded its own
// event (noted in its trail) gets no generic one.
func TestAttemptNotDuplicated(t *testing.T) {
	rec := &recorder{}
	h := middleware(rec, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trail.Note(r.Context()) // what the batcher does once the handler's event is durable
		w.WriteHeader(http.StatusNotFound)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/fhir/Patient/p1", nil))
	if n := len(rec.events()); n != 0 || w.Code != http.StatusNotFound {
		t.Fatalf("got %d generic events and status %d, want none and 404", n, w.Code)
	}
}

// TestAttemptFailsClosed: if the generic event cannot be recorded, the
// answer is 503 with Retry-After, and nothing the handler meant to send
// (body, cookies, location) leaves.
func TestAttemptFailsClosed(t *testing.T) {
	rec := &recorder{down: true}
	h := middleware(rec, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "c", Value: "v"})
		w.Header().Set("Location", "/fhir/Patient/p1")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, secretBody)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/fhir/Patient/p1", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if strings.Contains(w.Body.String(), "Quorvalenski") || w.Header().Get("Set-Cookie") != "" || w.Header().Get("Location") != "" {
		t.Fatalf("the refused answer carries the handler's content: %v %s", w.Header(), w.Body)
	}
}

// TestAttemptNotAuditedPaths: public pages and static files leave no
// event (no PHI, no authentication).
func TestAttemptNotAuditedPaths(t *testing.T) {
	for _, p := range []string{"/healthz", "/static/app.css", "/trust", "/login", "/log/checkpoint", "/.well-known/smart-configuration", "/oauth2/jwks"} {
		rec := &recorder{}
		h := middleware(rec, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
		if n := len(rec.events()); n != 0 {
			t.Errorf("GET %s: %d events, want none", p, n)
		}
	}
	for _, p := range []string{"/fhir", "/fhir/metadata", "/auth/login", "/admin", "/admin/api/users", "/oauth2/token", "/log/tile/entries/000", "/patients/x", "/portal", "/login/mfa"} {
		if !auditedPath(http.MethodPost, p) {
			t.Errorf("POST %s is not audited", p)
		}
	}
	// Fail closed: every path not named public is audited, whatever its
	// spelling.
	for _, p := range []string{"/ADMIN", "/Admin/api/alerts", "/auth", "/oauth2", "/OAUTH2/token", "/fhir;x/Patient", `/fhir\Patient`,
		"/PATIENTS", "/Login", "/LOG/tile/entries/000", "/log/TILE/entries/000", "//fhir/Patient", "/./fhir/Patient", "/static/../fhir/Patient", "/wp-login.php"} {
		if !auditedPath(http.MethodGet, p) {
			t.Errorf("GET %s is not audited", p)
		}
	}
}

// TestFHIRAttempt: the interaction, entity and query of a FHIR path;
// never a value of the path beyond a valid type and id.
func TestFHIRAttempt(t *testing.T) {
	cases := []struct {
		method, path  string
		action        audit.Action
		entity, query string
	}{
		{"GET", "/fhir/Patient/p1", audit.ActionRead, "Patient/p1", "GET Patient"},
		{"GET", "/fhir/Patient/p1/_history/3", audit.ActionVRead, "Patient/p1/_history/3", "GET Patient"},
		{"GET", "/fhir/Patient/p1/_history", audit.ActionHistory, "Patient/p1", "GET Patient"},
		{"GET", "/fhir/Patient/_history", audit.ActionHistoryType, "", "GET Patient"},
		{"GET", "/fhir/_history", audit.ActionHistorySystem, "", "GET"},
		{"GET", "/fhir/Patient", audit.ActionSearch, "", "GET Patient"},
		{"POST", "/fhir/Patient/_search", audit.ActionSearch, "", "POST Patient"},
		{"POST", "/fhir/Patient", audit.ActionCreate, "", "POST Patient"},
		{"PUT", "/fhir/Patient/p1", audit.ActionUpdate, "Patient/p1", "PUT Patient"},
		{"DELETE", "/fhir/Patient/p1", audit.ActionDelete, "Patient/p1", "DELETE Patient"},
		{"POST", "/fhir", audit.ActionTransaction, "", "POST"},
		{"GET", "/fhir/metadata", audit.ActionCapabilities, "", "GET"},
		{"GET", "/fhir/Patient/p1/$everything", audit.ActionEverything, "Patient/p1", "GET Patient"},
		{"POST", "/fhir/Patient/p1/$erase", audit.ActionErase, "Patient/p1", "POST Patient"},
		{"POST", "/fhir/Patient/p1/$break-glass", audit.ActionBreakGlass, "Patient/p1", "POST Patient"},
		{"GET", "/fhir/John Smith 1970", audit.ActionRequest, "", "GET"},
		{"GET", "/fhir/Patient/John Smith/x/y/z", audit.ActionRequest, "", "GET Patient"},
	}
	for _, tt := range cases {
		a, e, q := fhirAttempt(tt.method, tt.path)
		if a != tt.action || e != tt.entity || q != tt.query {
			t.Errorf("%s %s: got (%s, %q, %q), want (%s, %q, %q)", tt.method, tt.path, a, e, q, tt.action, tt.entity, tt.query)
		}
	}
}
