package httpapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// syntheaDir holds the shared Synthea export (outside the repository).
const syntheaDir = "../../../shared/data/synthea"

// syntheaFiles returns the hospital and practitioner bundles, then the
// two smallest patient bundles; it skips when the export is absent.
func syntheaFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(syntheaDir); err != nil {
		t.Skipf("shared Synthea data not available at %s: %v", syntheaDir, err)
	}
	hosp, _ := filepath.Glob(filepath.Join(syntheaDir, "hospitalInformation*.json"))
	pract, _ := filepath.Glob(filepath.Join(syntheaDir, "practitionerInformation*.json"))
	all, _ := filepath.Glob(filepath.Join(syntheaDir, "*.json"))
	var patients []string
	for _, f := range all {
		if !slices.Contains(hosp, f) && !slices.Contains(pract, f) {
			patients = append(patients, f)
		}
	}
	if len(hosp) == 0 || len(pract) == 0 || len(patients) < 2 {
		t.Fatalf("%s lacks hospital, practitioner or patient bundles", syntheaDir)
	}
	size := func(f string) int64 {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	slices.SortFunc(patients, func(a, b string) int { return int(size(a) - size(b)) })
	return append(append(hosp, pract...), patients[:2]...)
}

func TestE2ESynthea(t *testing.T) {
	files := syntheaFiles(t)
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		want := map[string]int{}
		var patientIDs []string
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Entry []struct {
					Resource struct {
						ResourceType string `json:"resourceType"`
					} `json:"resource"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(b, &in); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			r := s.Do(t, "POST", "/fhir", b, apitest.H{"Prefer": "return=minimal"}).Want(t, http.StatusOK)
			st := statuses(r)
			if len(st) != len(in.Entry) {
				t.Fatalf("%s: %d response entries for %d entries", filepath.Base(f), len(st), len(in.Entry))
			}
			for i, e := range in.Entry {
				if !strings.HasPrefix(st[i], "2") {
					t.Errorf("%s entry %d (%s): %s", filepath.Base(f), i, e.Resource.ResourceType, st[i])
				}
				want[e.Resource.ResourceType]++
				if e.Resource.ResourceType == "Patient" {
					patientIDs = append(patientIDs, locationID(t, r, i))
				}
			}
		}
		for typ, n := range want {
			t.Run("count "+typ, func(t *testing.T) {
				r := s.Do(t, "GET", "/fhir/"+typ+"?_total=accurate&_count=1", nil, nil).Want(t, http.StatusOK)
				if got, ok := r.Total(); !ok || got != n {
					t.Errorf("%s: _total %d (present %v), want %d", typ, got, ok, n)
				}
			})
		}
		t.Run("compartments", func(t *testing.T) {
			if len(patientIDs) != 2 {
				t.Fatalf("patients: %v", patientIDs)
			}
			total := 0
			for _, pid := range patientIDs {
				var ids []string
				for _, p := range s.SearchAll(t, "/fhir/Patient/"+pid+"/$everything?_count=200") {
					ids = append(ids, p.IDs()...)
				}
				total += len(ids)
				if !slices.Contains(ids, "Patient/"+pid) {
					t.Errorf("$everything of %s lacks the patient", pid)
				}
				r := s.Do(t, "GET", "/fhir/Encounter?patient="+pid+"&_count=1", nil, nil).Want(t, http.StatusOK)
				enc := r.Resources()
				if len(enc) != 1 {
					t.Fatalf("no Encounter for %s", pid)
				}
				// Synthea's conditional references were resolved against the
				// practitioner and hospital bundles.
				raw, _ := json.Marshal(enc[0])
				if strings.Contains(string(raw), "?identifier=") {
					t.Errorf("unresolved conditional reference in %s", raw)
				}
			}
			// Provenance references several resources but one patient; the
			// patient bundles hold nothing outside the two compartments.
			var inBundles int
			for typ, n := range want {
				switch typ {
				case "Organization", "Location", "Practitioner", "PractitionerRole":
				default:
					inBundles += n
				}
			}
			if total != inBundles {
				t.Errorf("$everything of both patients: %d resources, want the %d of their bundles", total, inBundles)
			}
		})
	})
}
