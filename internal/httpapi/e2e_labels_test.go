package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// hasLabel reports whether res carries the security label code.
func hasLabel(res map[string]any, code string) bool {
	sec, _ := meta(res)["security"].([]any)
	for _, c := range sec {
		if m, _ := c.(map[string]any); m["code"] == code {
			return true
		}
	}
	return false
}

// TestE2ELabelsKept: security labels are lowered only by those the
// policies allow to (relabel: privacy officer, security administrator,
// service credentials). A physician's PUT, PATCH or Bundle entry that
// leaves a label out keeps it; their $meta-delete of it is refused; the
// system token removes it, and front desk then reads the Patient.
func TestE2ELabelsKept(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		doc := newActor(t, s, "physician", "")
		desk := newActor(t, s, "front-desk", "")
		restricted := func() string {
			id := s.Create(t, labelled(patient(uniq(), map[string]any{"gender": "female"}), "R"))
			careTeam(t, s, id, doc.fhirUser)
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, doc.headers).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, desk.headers).WantOutcome(t, http.StatusNotFound)
			return id
		}
		stored := func(t *testing.T, id string) map[string]any {
			t.Helper()
			return s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK).JSON
		}
		stillHidden := func(t *testing.T, id string) {
			t.Helper()
			if got := stored(t, id); !hasLabel(got, "R") {
				t.Fatalf("the R label was removed: meta %v", meta(got))
			}
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, desk.headers).WantOutcome(t, http.StatusNotFound)
		}

		t.Run("PUT without meta keeps the label", func(t *testing.T) {
			id := restricted()
			cur := s.Do(t, "GET", "/fhir/Patient/"+id, nil, doc.headers).Want(t, http.StatusOK).JSON
			delete(cur, "meta")
			cur["gender"] = "male"
			r := s.Do(t, "PUT", "/fhir/Patient/"+id, cur, doc.wheaders).Want(t, http.StatusOK)
			if !hasLabel(r.JSON, "R") {
				t.Fatalf("the answer lacks the kept label: meta %v", meta(r.JSON))
			}
			got := stored(t, id)
			if got["gender"] != "male" || meta(got)["versionId"] != "2" {
				t.Fatalf("the edit was not stored: %v %v", got["gender"], meta(got))
			}
			stillHidden(t, id)
		})
		t.Run("PATCH removing meta.security keeps the label", func(t *testing.T) {
			id := restricted()
			s.Do(t, "PATCH", "/fhir/Patient/"+id, jsonPatch(map[string]any{"op": "remove", "path": "/meta/security"}),
				with(doc.wheaders, "Content-Type", "application/json-patch+json")).Want(t, http.StatusOK)
			stillHidden(t, id)
		})
		t.Run("Bundle PUT entry keeps the label", func(t *testing.T) {
			id := restricted()
			cur := s.Do(t, "GET", "/fhir/Patient/"+id, nil, doc.headers).Want(t, http.StatusOK).JSON
			cur["meta"] = map[string]any{"tag": []any{map[string]any{"system": "http://example.org/tags", "code": "t"}}}
			r := s.Do(t, "POST", "/fhir", bundle("transaction", entry("", "PUT", "Patient/"+id, cur, nil)), doc.wheaders)
			r.Want(t, http.StatusOK)
			got := stored(t, id)
			if !strings.Contains(string(s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Body), `"t"`) {
				t.Fatalf("the entry's tag was not stored: meta %v", meta(got))
			}
			stillHidden(t, id)
		})
		t.Run("physician $meta-delete of a label is refused", func(t *testing.T) {
			id := restricted()
			r := s.Do(t, "POST", "/fhir/Patient/"+id+"/$meta-delete", metaParams("R"), doc.wheaders).WantOutcome(t, http.StatusForbidden)
			if strings.Contains(string(r.Body), `"R"`) || !strings.Contains(string(r.Body), "security label") {
				t.Fatalf("the refusal: %s", r)
			}
			if got := stored(t, id); meta(got)["versionId"] != "1" {
				t.Fatalf("a refused $meta-delete wrote a version: meta %v", meta(got))
			}
			stillHidden(t, id)
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeDenied, "Patient/"+id+"/_history/1")
			// Adding a label stays an ordinary update.
			s.Do(t, "POST", "/fhir/Patient/"+id+"/$meta-add", metaParams("PSY"), doc.wheaders).Want(t, http.StatusOK)
			if got := stored(t, id); !hasLabel(got, "PSY") || !hasLabel(got, "R") {
				t.Fatalf("$meta-add: meta %v", meta(got))
			}
		})
		t.Run("the system token lowers the label", func(t *testing.T) {
			id := restricted()
			s.Do(t, "POST", "/fhir/Patient/"+id+"/$meta-delete", metaParams("R"), nil).Want(t, http.StatusOK)
			if got := stored(t, id); hasLabel(got, "R") {
				t.Fatalf("the label is still there: meta %v", meta(got))
			}
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, desk.headers).Want(t, http.StatusOK)
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeSuccess, "Patient/"+id+"/_history/2")
			// And a PUT without the label by the system token lowers it too.
			id = restricted()
			cur := stored(t, id)
			delete(cur, "meta")
			s.Do(t, "PUT", "/fhir/Patient/"+id, cur, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, desk.headers).Want(t, http.StatusOK)
		})
	})
}
