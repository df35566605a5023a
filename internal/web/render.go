package web

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/phivault/phivault/internal/fhir"
)

// The renderers write an *Error's public part. None writes e.Err.

// Outcome returns a Renderer of FHIR OperationOutcomes (FHIR R4
// §3.1.0.4): the issues (or the one of Code and Msg; "exception" and
// "internal error" without either), with the request id as the
// resource id, in the media type that contentType picks for r. A HEAD
// request gets the headers only.
func Outcome(contentType func(*http.Request) string) Renderer {
	return func(w http.ResponseWriter, r *http.Request, e *Error) {
		WriteJSON(w, r, contentType(r), e.Status, OperationOutcome(r, e))
	}
}

// OperationOutcome is e as a FHIR OperationOutcome, with the request
// id of r as its id (none outside a request).
func OperationOutcome(r *http.Request, e *Error) map[string]any {
	issues := e.Issues
	if len(issues) == 0 && (e.Code != "" || e.Msg != "") {
		issues = []fhir.OutcomeIssue{{Code: e.Code, Diagnostic: e.Msg}}
	}
	oo := fhir.Outcome(issues)
	if id := RequestID(r.Context()); id != "" {
		oo["id"] = id
	}
	return oo
}

// outcomeMarshalFailed is the body sent when an OperationOutcome cannot
// be marshalled (it always can: its values are strings).
const outcomeMarshalFailed = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"internal error"}]}`

// WriteJSON writes v as JSON with the status and content type; a HEAD
// request gets the headers only. If v cannot be marshalled the answer is
// 500 with an OperationOutcome saying "internal error".
func WriteJSON(w http.ResponseWriter, r *http.Request, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(outcomeMarshalFailed)
	}
	WriteBody(w, r, contentType, status, b)
}

// WriteBody writes b with the status and content type; a HEAD request
// gets the headers only.
func WriteBody(w http.ResponseWriter, r *http.Request, contentType string, status int, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// JSON returns a Renderer of {"error": Msg} objects in contentType,
// with "request_id" too if withID (otherwise the id is in the
// X-Request-Id header only, so that refusals which must look alike are
// byte-identical).
func JSON(contentType string, withID bool) Renderer {
	return func(w http.ResponseWriter, r *http.Request, e *Error) {
		v := map[string]string{"error": e.Msg}
		if withID {
			v["request_id"] = RequestID(r.Context())
		}
		status := e.Status
		b, err := json.Marshal(v)
		if err != nil {
			status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
}

// OAuth writes e as an RFC 6749 §5.2 error response: {"error": Code,
// "error_description": Msg} as application/json.
func OAuth(w http.ResponseWriter, _ *http.Request, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.Code, "error_description": e.Msg})
}

// HTML writes a rendered page with the status, as text/html. The front
// ends render their own templates (into a buffer, so that a template
// failure can still become a clean 500) and hand the bytes here.
func HTML(w http.ResponseWriter, status int, page *bytes.Buffer) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(page.Bytes())
}
