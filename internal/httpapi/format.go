package httpapi

import (
	"mime"
	"net/http"
	"strings"
)

// FHIR JSON media types. Both are accepted: fhirclient and other real
// clients send application/json (R4 §3.1.0.1.10).
const (
	mediaFHIRJSON = "application/fhir+json"
	mediaJSON     = "application/json"
)

// responseType answers in the client's preferred JSON flavour:
// application/json if it asked only for that, else application/fhir+json.
func responseType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if f := r.URL.Query().Get("_format"); f == "application/json" {
		return mediaJSON + "; charset=utf-8"
	}
	if strings.Contains(accept, mediaJSON) && !strings.Contains(accept, mediaFHIRJSON) {
		return mediaJSON + "; charset=utf-8"
	}
	return mediaFHIRJSON + "; charset=utf-8"
}

// negotiate refuses formats other than JSON (406) and request bodies
// that are not JSON (415).
func negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := r.URL.Query().Get("_format")
		if f != "" && !jsonFormat(f) {
			writeOutcome(w, r, httpError(http.StatusNotAcceptable, "not-supported", "only JSON is supported (_format=json)"))
			return
		}
		// _format "allows a client to override the accept header value"
		// (R4 http.html#mime-type): with a JSON _format, Accept is not
		// consulted.
		rawRead := (r.Method == http.MethodGet || r.Method == http.MethodHead) && (binaryPath(r.URL.Path) || bulkFilePath(r.URL.Path))
		if a := r.Header.Get("Accept"); f == "" && a != "" && !acceptsJSON(a) && !rawRead {
			writeOutcome(w, r, httpError(http.StatusNotAcceptable, "not-supported", "only application/fhir+json and application/json are supported"))
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			form := mt == "application/x-www-form-urlencoded" && strings.HasSuffix(r.URL.Path, "/_search")
			rawWrite := err == nil && binaryPath(r.URL.Path) && r.Method != http.MethodPatch // binary.go
			patch := mt == mediaJSONPatch && r.Method == http.MethodPatch
			if ct != "" && (err != nil || (mt != mediaFHIRJSON && mt != mediaJSON && !form && !rawWrite && !patch)) {
				writeOutcome(w, r, httpError(http.StatusUnsupportedMediaType, "not-supported", "the body must be application/fhir+json or application/json"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func jsonFormat(f string) bool {
	switch f {
	case "json", mediaJSON, mediaFHIRJSON, "application/json+fhir":
		return true
	}
	return false
}

func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case mediaFHIRJSON, mediaJSON, "application/json+fhir", "*/*", "application/*":
			return true
		}
	}
	return false
}
