package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

func TestE2EEverythingAndErase(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		idA, idB := uniq(), uniq()
		pa := s.Create(t, patient(idA, nil))
		pb := s.Create(t, patient(idB, nil))
		want := []string{"Patient/" + pa}
		var obsA []string
		for range 3 {
			id := s.Create(t, observation(pa, nil))
			want = append(want, "Observation/"+id)
			obsA = append(obsA, id)
		}
		cond := s.Create(t, map[string]any{"resourceType": "Condition", "subject": ref("Patient/" + pa), "code": coding("http://snomed.info/sct", "44054006")})
		want = append(want, "Condition/"+cond)
		enc := s.Create(t, map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"}, "subject": ref("Patient/" + pa)})
		want = append(want, "Encounter/"+enc)
		deleted := s.Create(t, observation(pa, nil))
		s.Do(t, "DELETE", "/fhir/Observation/"+deleted, nil, nil).Want(t, http.StatusNoContent)
		obsB := s.Create(t, observation(pb, nil))
		s.Create(t, map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Outside"}}})

		t.Run("everything", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+pa+"/$everything", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "$everything", r.IDs(), want)
			r = s.Do(t, "GET", "/fhir/Patient/"+pb+"/$everything", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "$everything of B", r.IDs(), []string{"Patient/" + pb, "Observation/" + obsB})
		})
		t.Run("everything paged", func(t *testing.T) {
			var got []string
			pages := s.SearchAll(t, "/fhir/Patient/"+pa+"/$everything?_count=2")
			for _, p := range pages {
				got = append(got, p.IDs()...)
			}
			if len(pages) != 3 {
				t.Errorf("pages: got %d, want 3", len(pages))
			}
			sameSet(t, "paged $everything", got, want)
		})
		t.Run("everything errors", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Patient/nosuch-"+idA+"/$everything", nil, nil).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "GET", "/fhir/Patient/"+pa+"/$everything?_count=x", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir/Patient/"+pa+"/$everything?_page=forged", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
		t.Run("erase", func(t *testing.T) {
			r := s.Do(t, "POST", "/fhir/Patient/"+pa+"/$erase", nil, nil).Want(t, http.StatusOK)
			if r.JSON["resourceType"] != "OperationOutcome" {
				t.Errorf("erase answer: %s", r)
			}
			gone := []struct{ name, path string }{
				{"read patient", "/fhir/Patient/" + pa},
				{"vread patient", "/fhir/Patient/" + pa + "/_history/1"},
				{"read observation", "/fhir/Observation/" + obsA[0]},
				{"vread observation", "/fhir/Observation/" + obsA[1] + "/_history/1"},
				{"read condition", "/fhir/Condition/" + cond},
				{"everything", "/fhir/Patient/" + pa + "/$everything"},
			}
			for _, g := range gone {
				t.Run(g.name, func(t *testing.T) {
					s.Do(t, "GET", g.path, nil, nil).WantOutcome(t, http.StatusGone)
				})
			}
			empty := []string{
				"/fhir/Patient?identifier=" + testSystem + "|" + idA,
				"/fhir/Patient?_id=" + pa,
				"/fhir/Observation?patient=" + pa,
				"/fhir/Observation?_id=" + obsA[0],
				"/fhir/Condition?subject=Patient/" + pa,
			}
			for _, q := range empty {
				t.Run("search "+q, func(t *testing.T) {
					r := s.Do(t, "GET", q, nil, nil).Want(t, http.StatusOK)
					if len(r.Entries()) != 0 {
						t.Errorf("erased resources still found: %v", r.IDs())
					}
				})
			}
			t.Run("history", func(t *testing.T) {
				r := s.Do(t, "GET", "/fhir/Observation/_history", nil, nil).Want(t, http.StatusOK)
				for _, id := range r.IDs() {
					for _, o := range obsA {
						if id == "Observation/"+o {
							t.Errorf("type history still shows erased %s", id)
						}
					}
				}
			})
			t.Run("no writes into the erased record", func(t *testing.T) {
				s.Do(t, "POST", "/fhir/Observation", observation(pa, nil), nil).WantOutcome(t, http.StatusGone)
				s.Do(t, "PUT", "/fhir/Observation/"+obsA[0], observation(pa, map[string]any{"id": obsA[0]}), nil).WantOutcome(t, http.StatusGone)
			})
			s.Do(t, "POST", "/fhir/Patient/"+pa+"/$erase", nil, nil).WantOutcome(t, http.StatusGone)
			s.Do(t, "POST", "/fhir/Patient/nosuch-"+idA+"/$erase", nil, nil).WantOutcome(t, http.StatusNotFound)
		})
		t.Run("other patient untouched", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Patient/"+pb, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Observation/"+obsB, nil, nil).Want(t, http.StatusOK)
			r := s.Do(t, "GET", "/fhir/Observation?patient="+pb, nil, nil).Want(t, http.StatusOK)
			sameSet(t, "B's observations", r.IDs(), []string{"Observation/" + obsB})
			r = s.Do(t, "GET", "/fhir/Patient/"+pb+"/$everything", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "$everything of B", r.IDs(), []string{"Patient/" + pb, "Observation/" + obsB})
		})
	})
}
