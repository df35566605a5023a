package webui_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// tinyPNG is a 2×2 PNG.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// minimalPDF is a small well-formed PDF.
const minimalPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj " +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

// document stores a DocumentReference of pid with attachments (type,
// bytes) and returns its id.
func (e *env) document(t *testing.T, pid, title string, atts ...any) string {
	t.Helper()
	var content []any
	for i := 0; i+1 < len(atts); i += 2 {
		content = append(content, map[string]any{"attachment": map[string]any{"contentType": atts[i], "title": title,
			"data": base64.StdEncoding.EncodeToString(atts[i+1].([]byte))}})
	}
	return e.store(t, fhir.Resource{"resourceType": "DocumentReference", "status": "current", "docStatus": "final",
		"subject": map[string]any{"reference": "Patient/" + pid}, "date": "2026-03-01T10:00:00Z", "description": title,
		"type": map[string]any{"text": "Scanned document"}, "content": content})
}

// TestDocumentContent: a document's PDF or image is shown in the chart
// from a same-origin URL (never a data: URL), served with its declared
// type, nosniff and a CSP of its own; other types are not served, nor
// another patient's document under this patient's chart.
func TestDocumentContent(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.docs", "Dee Docs", true, identity.RolePhysician)
	pid := e.storePatient(t, "Documentson", "1970-01-01", nil)
	other := e.storePatient(t, "Otherdocs", "1971-01-01", nil)
	e.careTeam(t, pid, doc.FHIRUser)
	e.careTeam(t, other, doc.FHIRUser)
	pngBytes := tinyPNG(t)
	did := e.document(t, pid, "ECG strip", "application/pdf", []byte(minimalPDF), "image/png", pngBytes,
		"text/html", []byte("<script>alert(1)</script>"), "application/pdf", []byte("<html><script>alert(2)</script></html>"))
	otherDoc := e.document(t, other, "Other's scan", "image/png", pngBytes)

	s := e.sessionFor(t, doc)
	chart := s.get(t, "/patients/"+pid)
	notes := section(chart.Body, "notes")
	base := "/patients/" + pid + "/documents/" + did + "/content/"
	if !strings.Contains(notes, `<iframe class="doc-frame" src="`+base+`0"`) || !strings.Contains(notes, `<img class="doc-image" src="`+base+`1"`) ||
		strings.Contains(notes, base+"2") || strings.Contains(chart.Body, "data:application/pdf") {
		t.Errorf("the chart's document:\n%s", notes)
	}

	get := func(path string) (*http.Response, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", e.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: s.secret})
		resp, err := s.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for n, want := range map[string]struct {
		typ  string
		body []byte
	}{"0": {"application/pdf", []byte(minimalPDF)}, "1": {"image/png", pngBytes}, "3": {"application/pdf", []byte("<html><script>alert(2)</script></html>")}} {
		resp, b := get(base + n)
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != want.typ || !bytes.Equal(b, want.body) {
			t.Errorf("attachment %s: %d %q", n, resp.StatusCode, h.Get("Content-Type"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'none'") ||
			strings.Contains(h.Get("Content-Security-Policy"), "script-src") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'self'") ||
			h.Get("X-Frame-Options") != "SAMEORIGIN" || h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Disposition"), "inline") {
			t.Errorf("attachment %s headers: %v", n, h)
		}
	}
	for _, path := range []string{base + "2", base + "4", base + "x", "/patients/" + pid + "/documents/" + otherDoc + "/content/0"} {
		if resp, b := get(path); resp.StatusCode != http.StatusNotFound || bytes.Contains(b, pngBytes) || strings.Contains(string(b), "<script>alert") {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}
