package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// TestBulkExportParams: kick-off parameters over HTTP. An empty _type
// is 400, not "every type"; more than 200 _type entries is 400 even
// spread over repeated parameters; a POST with parameters in both the
// query and the Parameters body is 400; a literal "+" in _outputFormat
// and _since (not percent-encoded) is read as the "+" it was.
func TestBulkExportParams(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
		for _, q := range []string{"_type=", "_type=,,,", strings.Repeat("_type=Patient&", 201)} {
			r := s.Do(t, "GET", "/fhir/$export?"+q, nil, asyncHeaders(h)).WantOutcome(t, http.StatusBadRequest)
			if !bytes.Contains(r.Body, []byte("_type")) {
				t.Fatalf("%.40s: %s", q, r.Body)
			}
		}
		body := map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "_type", "valueString": "Observation"}}}
		r := s.Do(t, "POST", "/fhir/$export?_type=Patient", body, asyncHeaders(h)).WantOutcome(t, http.StatusBadRequest)
		if !bytes.Contains(r.Body, []byte("Parameters body only")) {
			t.Fatalf("POST with query and body: %s", r.Body)
		}
		s.Do(t, "POST", "/fhir/$export", body, asyncHeaders(h)).Want(t, http.StatusAccepted)
		s.Do(t, "GET", "/fhir/$export?_type=Patient&_outputFormat=application/fhir+ndjson&_since=2024-01-01T00:00:00+02:00", nil, asyncHeaders(h)).Want(t, http.StatusAccepted)
	})
}
