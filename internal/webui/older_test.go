package webui_test

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// olderLink is the href of the element with id, unescaped, or "".
func olderLink(body, id string) string {
	m := regexp.MustCompile(`href="([^"]+)" id="` + regexp.QuoteMeta(id) + `"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestChartPaging: the chart shows the latest 20 entries of a section
// with a link to the older ones, which pages through the rest; a paging
// link of another patient's chart does not show their entries under
// this one.
func TestChartPaging(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.pages", "Paige Pages", true, identity.RolePhysician)
	pid := e.storePatient(t, "Pagewell", "1940-04-04", nil)
	other := e.storePatient(t, "Otherpage", "1941-04-04", nil)
	for _, p := range []string{pid, other} {
		e.careTeam(t, p, doc.FHIRUser)
		for i := range 23 {
			e.store(t, fhir.Resource{"resourceType": "DocumentReference", "status": "current", "docStatus": "final",
				"subject": map[string]any{"reference": "Patient/" + p}, "date": fmt.Sprintf("2025-01-%02dT10:00:00Z", i+1),
				"description": fmt.Sprintf("Note %02d of %s", i+1, p), "type": map[string]any{"text": "Progress note"},
				"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": "dGV4dA=="}}}})
		}
	}
	s := e.sessionFor(t, doc)
	chart := s.get(t, "/patients/"+pid)
	if n := len(noteIDs(chart.Body)); n != 20 {
		t.Errorf("the chart lists %d notes, want the latest 20", n)
	}
	if !strings.Contains(chart.Body, "Note 23 of "+pid) || strings.Contains(chart.Body, "Note 03 of "+pid) {
		t.Errorf("the chart does not show the latest notes")
	}
	link := olderLink(chart.Body, "older-documents")
	if !strings.HasPrefix(link, "/patients/"+pid+"/older/documents?page=") || strings.Contains(link, "Pagewell") {
		t.Fatalf("older link %q", link)
	}
	older := s.get(t, link)
	if older.Status != http.StatusOK {
		t.Fatalf("older page: %d", older.Status)
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(older.Body, fmt.Sprintf("Note %02d of %s", i, pid)) {
			t.Errorf("older page lacks note %d", i)
		}
	}
	if strings.Contains(older.Body, "Note 04 of") || strings.Contains(older.Body, `id="older-next"`) {
		t.Errorf("older page shows more than the rest")
	}
	// The other patient's paging link under this patient's chart.
	otherLink := olderLink(s.get(t, "/patients/"+other).Body, "older-documents")
	tok := otherLink[strings.Index(otherLink, "?page="):]
	if got := s.get(t, "/patients/"+pid+"/older/documents"+tok); got.Status != http.StatusBadRequest || strings.Contains(got.Body, "of "+other) {
		t.Errorf("another patient's page under this chart: %d", got.Status)
	}
	if got := s.get(t, "/patients/"+pid+"/older/documents?page=forged"); got.Status != http.StatusBadRequest {
		t.Errorf("a forged token: %d", got.Status)
	}
	if got := s.get(t, "/patients/"+pid+"/older/secrets?page=x"); got.Status != http.StatusNotFound {
		t.Errorf("an unknown section: %d", got.Status)
	}
}
