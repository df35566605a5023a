package webui_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// TestChartForeignIDs (penetration test: naming another patient's
// Condition or DocumentReference, which the clinician may not read, in a
// chart URL answered 500 or 403 where an unknown id answered 404, so the
// answer told which ids exist): every such id answers exactly as an
// unknown one, and nothing is changed.
func TestChartForeignIDs(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.foreign", "Fay Foreign", true, identity.RolePhysician)
	own := e.storePatient(t, "Ownly", "1960-01-01", nil)
	other := e.storePatient(t, "Otherly", "1961-01-01", nil)
	e.careTeam(t, own, doc.FHIRUser)
	cond := e.store(t, fhir.Resource{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + other},
		"code": map[string]any{"text": "Something private"}})
	docRef := e.store(t, fhir.Resource{"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
		"subject": map[string]any{"reference": "Patient/" + other},
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "application/pdf", "data": "JVBERi0xLjQK"}}}})
	s := e.sessionFor(t, doc)
	for _, c := range []struct {
		method, path string
		form         url.Values
	}{
		{"POST", "/patients/" + own + "/problems/%s/resolve", url.Values{}},
		{"POST", "/patients/" + own + "/notes/%s", url.Values{"title": {"x"}, "text": {"y"}}},
		{"POST", "/patients/" + own + "/notes/%s/sign", url.Values{}},
		{"POST", "/patients/" + own + "/notes/%s/addenda", url.Values{"text": {"y"}}},
		{"GET", "/patients/" + own + "/documents/%s/content/0", nil},
	} {
		id := cond
		if c.path != "/patients/"+own+"/problems/%s/resolve" {
			id = docRef
		}
		foreign := s.do(t, c.method, fmtPath(c.path, id), cloneForm(c.form))
		unknown := s.do(t, c.method, fmtPath(c.path, "no-such-id"), cloneForm(c.form))
		if foreign.Status != unknown.Status || foreign.Status != 404 {
			t.Errorf("%s %s: another patient's id answers %d, an unknown one %d (want 404 for both) %s", c.method, c.path, foreign.Status, unknown.Status, foreign.Location)
		}
	}
	st, err := e.App.Record.Read(t.Context(), trusted, "Condition", cond)
	if err != nil || st.Version != 1 {
		t.Fatalf("the other patient's Condition changed: %v %d", err, st.Version)
	}
}

func fmtPath(p, id string) string { return strings.Replace(p, "%s", id, 1) }

func cloneForm(f url.Values) url.Values {
	if f == nil {
		return nil
	}
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	return out
}
