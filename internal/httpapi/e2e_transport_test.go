package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/config"
)

const appOrigin = "https://app.example.org"

// TestE2ECORS: the configured origin gets CORS headers (never
// credentials) on /fhir and the SMART endpoints, preflights are answered
// without authentication, other origins and other paths get none.
func TestE2ECORS(t *testing.T) {
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) { c.Server.CORSOrigins = []string{appOrigin} })
	pid := s.Create(t, patient(uniq(), nil))
	pre := apitest.H{"Authorization": apitest.NoAuth, "Origin": appOrigin, "Access-Control-Request-Method": "PUT",
		"Access-Control-Request-Headers": "authorization,content-type,if-match"}
	for _, path := range []string{"/fhir/Patient/" + pid, "/fhir", "/.well-known/smart-configuration", "/oauth2/token"} {
		r := s.Do(t, "OPTIONS", path, nil, pre)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != appOrigin ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PUT") {
			t.Errorf("preflight %s: %d %v", path, r.Status, r.Header)
		}
		if r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s allows credentials", path)
		}
	}
	r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, apitest.H{"Origin": appOrigin}).Want(t, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != appOrigin || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Etag") {
		t.Errorf("actual request: %v", r.Header)
	}
	for _, c := range []struct{ path, origin string }{
		{"/fhir/Patient/" + pid, "https://evil.example"},
		{"/healthz", appOrigin},
		{"/admin/api/users", appOrigin},
	} {
		h := apitest.H{"Origin": c.origin}
		r := s.Do(t, "GET", c.path, nil, h)
		if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("GET %s from %s: Access-Control-Allow-Origin %q", c.path, c.origin, v)
		}
		p := s.Do(t, "OPTIONS", c.path, nil, apitest.H{"Origin": c.origin, "Access-Control-Request-Method": "GET", "Authorization": apitest.NoAuth})
		if v := p.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("preflight %s from %s: Access-Control-Allow-Origin %q", c.path, c.origin, v)
		}
	}
	// The CapabilityStatement says so.
	m := s.Do(t, "GET", "/fhir/metadata", nil, nil).Want(t, http.StatusOK)
	if !strings.Contains(string(m.Body), `"cors":true`) {
		t.Errorf("metadata does not declare cors: %s", m.Body)
	}
}

// TestE2ECORSOff: without configured origins nothing carries CORS headers.
func TestE2ECORSOff(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	r := s.Do(t, "OPTIONS", "/fhir/Patient", nil, apitest.H{"Origin": appOrigin, "Access-Control-Request-Method": "GET", "Authorization": apitest.NoAuth})
	if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("CORS header without configuration: %q", v)
	}
	if strings.Contains(string(s.Do(t, "GET", "/fhir/metadata", nil, nil).Body), `"cors":true`) {
		t.Error("metadata declares cors without configuration")
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// TestE2EGzip: FHIR JSON is compressed for clients that accept it, the
// token endpoint is not; gzip request bodies are accepted and bounded
// after decompression.
func TestE2EGzip(t *testing.T) {
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) { c.Limits.MaxBodyBytes = 64 << 10 })
	pid := s.Create(t, patient(uniq(), nil))
	for range 10 {
		s.Create(t, observation(pid, nil))
	}
	r := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid, nil, apitest.H{"Accept-Encoding": "gzip"}).Want(t, http.StatusOK)
	if r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("search not compressed: %v", r.Header)
	}
	var b map[string]any
	if err := json.Unmarshal(gunzip(t, r.Body), &b); err != nil || b["resourceType"] != "Bundle" {
		t.Fatalf("compressed search: %v", err)
	}
	r = s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid, nil, apitest.H{"Accept-Encoding": "identity"}).Want(t, http.StatusOK)
	if r.Header.Get("Content-Encoding") != "" {
		t.Errorf("compressed without Accept-Encoding gzip: %v", r.Header)
	}
	tok := s.Do(t, "POST", "/oauth2/token", "grant_type=client_credentials", apitest.H{"Accept-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded", "Authorization": apitest.NoAuth})
	if tok.Header.Get("Content-Encoding") != "" {
		t.Errorf("the token endpoint compressed its answer")
	}

	// Request bodies.
	obs, _ := json.Marshal(observation(pid, nil))
	s.Do(t, "POST", "/fhir/Observation", gzipped(obs), apitest.H{"Content-Encoding": "gzip"}).Want(t, http.StatusCreated)
	s.Do(t, "POST", "/fhir/Observation", []byte("not gzip"), apitest.H{"Content-Encoding": "gzip"}).WantOutcome(t, http.StatusBadRequest)
	s.Do(t, "POST", "/fhir/Observation", obs, apitest.H{"Content-Encoding": "br"}).WantOutcome(t, http.StatusUnsupportedMediaType)
	// A bomb: 1 MiB of spaces compresses to about 1 KiB; decompressed
	// it passes the 64 KiB limit.
	bomb := append(append([]byte(`{"resourceType":"Observation",`), bytes.Repeat([]byte(" "), 1<<20)...), obs[1:]...)
	z := gzipped(bomb)
	if len(z) > 8<<10 {
		t.Fatalf("bomb compressed to %d bytes", len(z))
	}
	s.Do(t, "POST", "/fhir/Observation", z, apitest.H{"Content-Encoding": "gzip"}).WantOutcome(t, http.StatusRequestEntityTooLarge)
}

// TestE2EBinaryRaw: raw content in and out of Binary, with safe headers,
// under the same authorization as the FHIR form.
func TestE2EBinaryRaw(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := s.Create(t, map[string]any{"resourceType": "DocumentReference", "status": "current",
			"subject": ref("Patient/" + pid), "content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/html"}}}})
		html := []byte("<html><script>alert(1)</script></html>")
		r := s.Do(t, "POST", "/fhir/Binary", html, apitest.H{"Content-Type": "text/html", "X-Security-Context": "DocumentReference/" + doc}).Want(t, http.StatusCreated)
		id := r.ID()
		if r.JSON["contentType"] != "text/html" || r.JSON["data"] != base64.StdEncoding.EncodeToString(html) {
			t.Fatalf("created Binary: %s", r)
		}
		raw := s.Do(t, "GET", "/fhir/Binary/"+id, nil, apitest.H{"Accept": "text/html"}).Want(t, http.StatusOK)
		if !bytes.Equal(raw.Body, html) {
			t.Errorf("raw read: %q", raw.Body)
		}
		h := raw.Header
		if h.Get("Content-Type") != "text/html" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("ETag") == "" {
			t.Errorf("raw read headers: %v", h)
		}
		fj := s.Do(t, "GET", "/fhir/Binary/"+id, nil, apitest.H{"Accept": "application/fhir+json"}).Want(t, http.StatusOK)
		if fj.JSON["resourceType"] != "Binary" {
			t.Errorf("FHIR read of a Binary: %s", fj)
		}
		s.Do(t, "GET", "/fhir/Binary/"+id, nil, apitest.H{"Accept": "*/*"}).Want(t, http.StatusOK)
		v := s.Do(t, "GET", "/fhir/Binary/"+id+"/_history/1", nil, apitest.H{"Accept": "image/png, */*;q=0.8"}).Want(t, http.StatusOK)
		if !bytes.Equal(v.Body, html) {
			t.Errorf("raw vread: %q", v.Body)
		}
		png := []byte("\x89PNG\r\n\x1a\nrest")
		s.Do(t, "PUT", "/fhir/Binary/"+id, png, apitest.H{"Content-Type": "image/png", "X-Security-Context": "DocumentReference/" + doc}).Want(t, http.StatusOK)
		p := s.Do(t, "GET", "/fhir/Binary/"+id, nil, apitest.H{"Accept": "image/png"}).Want(t, http.StatusOK)
		if !bytes.Equal(p.Body, png) || p.Header.Get("Content-Disposition") != "inline" {
			t.Errorf("updated raw Binary: %q %v", p.Body, p.Header)
		}
		// Raw bodies are for Binary only.
		s.Do(t, "POST", "/fhir/Observation", html, apitest.H{"Content-Type": "text/html"}).WantOutcome(t, http.StatusUnsupportedMediaType)
		s.Do(t, "GET", "/fhir/Observation?_id=x", nil, apitest.H{"Accept": "text/html"}).WantOutcome(t, http.StatusNotAcceptable)

		// Authorization: the patient of the DocumentReference reads it,
		// another patient does not; the raw form answers as the FHIR
		// form does.
		own := newActor(t, s, "patient", pid)
		other := newActor(t, s, "patient", s.Create(t, patient(uniq(), nil)))
		s.Do(t, "GET", "/fhir/Binary/"+id, nil, withAccept(own.headers, "image/png")).Want(t, http.StatusOK)
		fhirForm := s.Do(t, "GET", "/fhir/Binary/"+id, nil, withAccept(other.headers, "application/fhir+json"))
		d := s.Do(t, "GET", "/fhir/Binary/"+id, nil, withAccept(other.headers, "image/png"))
		if d.Status == http.StatusOK || bytes.Contains(d.Body, png[:4]) || d.Status != fhirForm.Status || d.JSON["resourceType"] != "OperationOutcome" {
			t.Errorf("another patient's raw read: %d (FHIR form: %d): %s", d.Status, fhirForm.Status, d)
		}
		s.Do(t, "POST", "/fhir/Binary", png, withType(other.wheaders, "image/png", "DocumentReference/"+doc)).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
	})
}

func withAccept(h apitest.H, accept string) apitest.H {
	out := apitest.H{"Accept": accept}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func withType(h apitest.H, ct, sc string) apitest.H {
	out := apitest.H{"Content-Type": ct, "X-Security-Context": sc}
	for k, v := range h {
		out[k] = v
	}
	return out
}
