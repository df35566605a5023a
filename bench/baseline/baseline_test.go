package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/synth"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := openStore(t.Context(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(newHandler(slog.New(slog.DiscardHandler), st))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, u string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer ignored")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestTransactionSearchRead loads the provider directory and two synthetic
// patients, then finds a patient's heart rates and reads one back.
func TestTransactionSearchRead(t *testing.T) {
	srv := newTestServer(t)
	base := srv.URL + "/fhir"
	var bundles [][]byte
	if err := synth.Generate(t.Context(), synth.Options{Patients: 2, Seed: 9}, func(_ string, b []byte) error {
		bundles = append(bundles, bytes.Clone(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, b := range bundles {
		status, _, body := send(t, "POST", base, b)
		if status != 200 {
			t.Fatalf("bundle %d: status %d: %s", i, status, body)
		}
	}
	// The directory again: ifNoneExist makes it create nothing.
	_, _, body := send(t, "POST", base, bundles[0])
	if strings.Contains(string(body), "201 Created") {
		t.Errorf("second directory load created resources despite ifNoneExist")
	}

	status, _, body := send(t, "GET", base+"/Patient?_count=1", nil)
	var page struct {
		Link  []struct{ Relation, URL string }
		Entry []struct{ Resource map[string]any }
	}
	if err := json.Unmarshal(body, &page); err != nil || status != 200 || len(page.Entry) != 1 {
		t.Fatalf("listing patients: %d %v %s", status, err, body)
	}
	if len(page.Link) != 2 || page.Link[1].Relation != "next" {
		t.Errorf("first page of 2 patients has no next link: %+v", page.Link)
	}
	pid := page.Entry[0].Resource["id"].(string)

	status, _, body = send(t, "GET", base+"/Observation?patient=Patient/"+pid+"&code=http://loinc.org|8867-4&_count=50", nil)
	page.Entry = nil
	if err := json.Unmarshal(body, &page); err != nil || status != 200 || len(page.Entry) < 3 {
		t.Fatalf("searching heart rates: %d %v, %d entries", status, err, len(page.Entry))
	}
	obs := page.Entry[0].Resource
	if ref := obs["subject"].(map[string]any)["reference"]; ref != "Patient/"+pid {
		t.Errorf("subject %v, want Patient/%s", ref, pid)
	}
	if ref := obs["encounter"].(map[string]any)["reference"].(string); !strings.HasPrefix(ref, "Encounter/") {
		t.Errorf("urn:uuid encounter reference not rewritten: %s", ref)
	}

	status, _, body = send(t, "GET", base+"/Observation/"+obs["id"].(string), nil)
	if status != 200 || !bytes.Contains(body, []byte(`"8867-4"`)) {
		t.Errorf("read back: %d %s", status, body)
	}
	if status, _, _ := send(t, "GET", base+"/Observation/nope", nil); status != 404 {
		t.Errorf("missing resource: status %d, want 404", status)
	}
}

func TestCreateAndConditionalFailure(t *testing.T) {
	srv := newTestServer(t)
	base := srv.URL + "/fhir"
	status, hdr, body := send(t, "POST", base+"/Patient", []byte(`{"resourceType":"Patient","gender":"female"}`))
	if status != 201 || !strings.Contains(hdr.Get("Location"), "/fhir/Patient/") || !bytes.Contains(body, []byte(`"versionId":"1"`)) {
		t.Fatalf("create: %d %q %s", status, hdr.Get("Location"), body)
	}
	if status, _, _ := send(t, "POST", base+"/Patient", []byte(`{"resourceType":"Observation"}`)); status != 400 {
		t.Errorf("type mismatch: status %d, want 400", status)
	}
	// A transaction whose conditional reference matches nothing fails whole.
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
		{"fullUrl":"urn:uuid:b","resource":{"resourceType":"Encounter","subject":{"reference":"urn:uuid:a"},
		 "serviceProvider":{"reference":"Organization?identifier=x|y"}},"request":{"method":"POST","url":"Encounter"}}]}`
	if status, _, _ := send(t, "POST", base, []byte(tx)); status != 400 {
		t.Errorf("unresolvable conditional reference: status %d, want 400", status)
	}
	_, _, body = send(t, "GET", base+"/Patient?_count=10", nil)
	if n := bytes.Count(body, []byte(`"fullUrl"`)); n != 1 {
		t.Errorf("failed transaction left %d patients, want 1 (the created one)", n)
	}
}
