package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

func TestAdapter(t *testing.T) {
	secret := errors.New("cause with a secret: pvs_123")
	tests := []struct {
		name       string
		err        error
		render     Renderer
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name: "json with request id", err: &Error{Status: 409, Msg: "that username is taken", Err: secret},
			render: JSON("application/json", true), wantStatus: 409,
			wantBody:   `{"error":"that username is taken","request_id":"rid1"}`,
			wantHeader: map[string]string{"Content-Type": "application/json"},
		},
		{
			name: "json without request id, retry rounded up", err: &Error{Status: 429, Msg: "too many", RetryAfter: 1500 * time.Millisecond},
			render: JSON("application/json; charset=utf-8", false), wantStatus: 429,
			wantBody: `{"error":"too many"}`, wantHeader: map[string]string{"Retry-After": "2", "Content-Type": "application/json; charset=utf-8"},
		},
		{
			name: "unmapped error is 500 internal error", err: secret,
			render: Outcome(func(*http.Request) string { return "application/fhir+json; charset=utf-8" }), wantStatus: 500,
			wantBody: `{"id":"rid1","issue":[{"code":"exception","diagnostics":"internal error","severity":"error"}],"resourceType":"OperationOutcome"}`,
		},
		{
			name: "outcome with issues and a header",
			err: &Error{Status: 422, Issues: []fhir.OutcomeIssue{{Code: "invalid", Diagnostic: "bad", Location: "Patient.name"}},
				Header: http.Header{"Www-Authenticate": {`Bearer realm="phivault"`}}},
			render: Outcome(func(*http.Request) string { return "application/fhir+json; charset=utf-8" }), wantStatus: 422,
			wantBody:   `{"id":"rid1","issue":[{"code":"invalid","diagnostics":"bad","expression":["Patient.name"],"severity":"error"}],"resourceType":"OperationOutcome"}`,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="phivault"`},
		},
		{
			name: "oauth", err: fmtWrap(&Error{Status: 400, Code: "invalid_grant", Msg: "the code is invalid", Err: secret}),
			render: OAuth, wantStatus: 400,
			wantBody: `{"error":"invalid_grant","error_description":"the code is invalid"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			a := Adapter{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Render: tt.render}
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			r = r.WithContext(WithRequestID(r.Context(), "rid1"))
			w := httptest.NewRecorder()
			a.Handle(func(http.ResponseWriter, *http.Request) error { return tt.err }).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body %s, want %s", got, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if strings.Contains(w.Body.String(), "pvs_123") {
				t.Error("the internal cause reached the client")
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log line: %v: %s", err, logs.String())
			}
			if line["request_id"] != "rid1" || int(line["status"].(float64)) != tt.wantStatus {
				t.Errorf("log line %v", line)
			}
			if wantLevel := map[bool]string{true: "ERROR", false: "INFO"}[tt.wantStatus >= 500]; line["level"] != wantLevel {
				t.Errorf("log level %v, want %s", line["level"], wantLevel)
			}
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }

func TestAdapterNotesRoutesOnlyWhenAsked(t *testing.T) {
	for _, note := range []bool{false, true} {
		ctx, n := WithNotes(t.Context())
		r := httptest.NewRequest(http.MethodGet, "/x/1", nil).WithContext(ctx)
		r.Pattern = "GET /x/{id}"
		a := Adapter{Log: slog.New(slog.DiscardHandler), Render: OAuth, NoteRoutes: note}
		a.Handle(func(http.ResponseWriter, *http.Request) error { return nil }).ServeHTTP(httptest.NewRecorder(), r)
		if got := n.Snapshot().Route != ""; got != note {
			t.Errorf("NoteRoutes %v: route noted %v", note, got)
		}
	}
}

func TestMapReturningNilFallsBack(t *testing.T) {
	a := Adapter{Log: slog.New(slog.DiscardHandler), Render: JSON("application/json", false),
		Map: func(*http.Request, error) *Error { return nil }}
	w := httptest.NewRecorder()
	a.Fail(w, httptest.NewRequest(http.MethodGet, "/", nil), New(http.StatusTeapot, "short and stout", nil))
	if w.Code != http.StatusTeapot || w.Body.String() != `{"error":"short and stout"}` {
		t.Errorf("got %d %s", w.Code, w.Body.String())
	}
}

func TestHeadGetsNoBody(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, httptest.NewRequest(http.MethodHead, "/", nil), "application/json", 404, map[string]string{"a": "b"})
	if w.Code != 404 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: %d %q %q", w.Code, w.Body.String(), w.Header().Get("Content-Type"))
	}
}
