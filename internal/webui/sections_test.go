package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// store creates res (as the test's trusted caller) and returns its id.
func (e *env) store(t *testing.T, res fhir.Resource) string {
	t.Helper()
	st, _, err := e.App.Record.Create(t.Context(), trusted, res, "")
	if err != nil {
		t.Fatalf("storing %v: %v", res["resourceType"], err)
	}
	return st.ID
}

func loinc(code, display string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": code, "display": display}}}
}

// lab is a laboratory Observation of pid.
func lab(pid, when, code, display string, v float64, ucum string, lo, hi float64, interp string) fhir.Resource {
	o := fhir.Resource{"resourceType": "Observation", "status": "final",
		"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		"code":              loinc(code, display),
		"subject":           map[string]any{"reference": "Patient/" + pid},
		"effectiveDateTime": when,
		"valueQuantity":     map[string]any{"value": v, "unit": ucum, "system": "http://unitsofmeasure.org", "code": ucum},
		"referenceRange": []any{map[string]any{
			"low":  map[string]any{"value": lo, "unit": ucum, "system": "http://unitsofmeasure.org", "code": ucum},
			"high": map[string]any{"value": hi, "unit": ucum, "system": "http://unitsofmeasure.org", "code": ucum}}}}
	if interp != "" {
		o["interpretation"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": interp}}}}
	}
	return o
}

// TestChartSections: the chart shows laboratory results with reference
// ranges, flags (from the interpretation, else computed from the range)
// and trends, in written units; a diagnostic report with its results;
// medications with dose and instructions; immunizations; procedures;
// encounters as a timeline with details; and the problem list, where a
// problem is added and resolved.
func TestChartSections(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.sections", "Sue Sections", true, identity.RolePhysician)
	pid := e.storePatient(t, "Sectionby", "1955-03-03", nil)
	e.careTeam(t, pid, doc.FHIRUser)
	subj := map[string]any{"reference": "Patient/" + pid}

	e.store(t, lab(pid, "2026-01-10T08:00:00Z", "2823-3", "Potassium", 4.1, "mmol/L", 3.5, 5.1, ""))
	k2 := e.store(t, lab(pid, "2026-02-10T08:00:00Z", "2823-3", "Potassium", 5.6, "mmol/L", 3.5, 5.1, ""))
	hb := e.store(t, lab(pid, "2026-02-10T08:00:00Z", "718-7", "Hemoglobin", 12.9, "g/dL", 12, 16, "L"))
	e.store(t, lab(pid, "2026-02-10T08:00:00Z", "2160-0", "Creatinine", 80, "umol/L", 45, 90, ""))
	e.store(t, fhir.Resource{"resourceType": "DiagnosticReport", "status": "final", "code": loinc("24323-8", "Comprehensive metabolic panel"),
		"subject": subj, "effectiveDateTime": "2026-02-10T08:00:00Z", "conclusion": "Mild hyperkalaemia.",
		"result": []any{map[string]any{"reference": "Observation/" + k2}, map[string]any{"reference": "Observation/" + hb}}})
	e.store(t, fhir.Resource{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subj, "authoredOn": "2026-01-05",
		"medicationCodeableConcept": map[string]any{"text": "Metoprolol 50 mg tablet"},
		"dosageInstruction": []any{map[string]any{"text": "Take with food.",
			"route":       map[string]any{"text": "oral"},
			"timing":      map[string]any{"repeat": map[string]any{"frequency": 2, "period": 1, "periodUnit": "d"}},
			"doseAndRate": []any{map[string]any{"doseQuantity": map[string]any{"value": 1, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"}}}}}})
	e.store(t, fhir.Resource{"resourceType": "Immunization", "status": "completed", "patient": subj, "occurrenceDateTime": "2025-10-01",
		"vaccineCode": map[string]any{"text": "Influenza, seasonal"}, "lotNumber": "FLU-42"})
	e.store(t, fhir.Resource{"resourceType": "Procedure", "status": "completed", "subject": subj, "performedDateTime": "2024-05-05",
		"code": map[string]any{"text": "Appendectomy"}, "reasonCode": []any{map[string]any{"text": "Acute appendicitis"}}})
	e.store(t, fhir.Resource{"resourceType": "Encounter", "status": "finished", "subject": subj,
		"class":      map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
		"type":       []any{map[string]any{"text": "Cardiology follow-up"}},
		"period":     map[string]any{"start": "2026-02-11T09:00:00Z", "end": "2026-02-11T09:30:00Z"},
		"reasonCode": []any{map[string]any{"text": "Palpitations"}},
		"location":   []any{map[string]any{"location": map[string]any{"display": "Clinic B, room 4"}}}})
	e.store(t, fhir.Resource{"resourceType": "Observation", "status": "final", "code": loinc("8867-4", "Heart rate"), "subject": subj,
		"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}},
		"effectiveDateTime": "2026-02-11T09:05:00Z", "valueQuantity": map[string]any{"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})

	s := e.sessionFor(t, doc)
	chart := s.get(t, "/patients/"+pid)
	if chart.Status != http.StatusOK {
		t.Fatalf("chart: %d", chart.Status)
	}
	labs := section(chart.Body, "labs")
	row := func(html, test string) string {
		i := strings.Index(html, "<td>"+test+"</td>")
		if i < 0 {
			return ""
		}
		j := strings.LastIndex(html[:i], "<tr")
		k := strings.Index(html[i:], "</tr>")
		return html[j : i+k]
	}
	// Potassium: the latest is computed high and up from 4.1.
	k := row(labs, "Potassium")
	if !strings.Contains(k, "5.6 mmol/L") || !strings.Contains(k, `class="flag">H<`) || !strings.Contains(k, "up from 4.1") || !strings.Contains(k, "3.5–5.1 mmol/L") {
		t.Errorf("potassium row:\n%s", k)
	}
	if h := row(labs, "Hemoglobin"); !strings.Contains(h, `class="flag">L<`) || !strings.Contains(h, "(low)") {
		t.Errorf("hemoglobin row (interpretation L):\n%s", h)
	}
	if c := row(labs, "Creatinine"); !strings.Contains(c, "80 µmol/L") || strings.Contains(c, `class="flag"`) || !strings.Contains(c, "45–90 µmol/L") {
		t.Errorf("creatinine row (UCUM umol/L, in range):\n%s", c)
	}
	reports := section(chart.Body, "reports")
	if !strings.Contains(reports, "Comprehensive metabolic panel") || !strings.Contains(reports, "Mild hyperkalaemia.") ||
		!strings.Contains(reports, "2 results") || !strings.Contains(reports, "Hemoglobin") || strings.Contains(reports, "Creatinine") {
		t.Errorf("diagnostic report:\n%s", reports)
	}
	if m := section(chart.Body, "medications"); !strings.Contains(m, "1 tablet, oral, 2 times a day — Take with food.") {
		t.Errorf("medication dose and instructions:\n%s", m)
	}
	if im := section(chart.Body, "immunizations"); !strings.Contains(im, "Influenza, seasonal") || !strings.Contains(im, "FLU-42") {
		t.Errorf("immunizations:\n%s", im)
	}
	if p := section(chart.Body, "procedures"); !strings.Contains(p, "Appendectomy") || !strings.Contains(p, "Acute appendicitis") {
		t.Errorf("procedures:\n%s", p)
	}
	if enc := section(chart.Body, "encounters"); !strings.Contains(enc, "Cardiology follow-up") || !strings.Contains(enc, "Palpitations") ||
		!strings.Contains(enc, "Clinic B, room 4") || !strings.Contains(enc, "ambulatory") {
		t.Errorf("encounter timeline:\n%s", enc)
	}
	if v := section(chart.Body, "vitals"); !strings.Contains(v, "88/min") {
		t.Errorf("vital signs in written units:\n%s", v)
	}

	// The problem list: add, then resolve.
	if bad := s.post(t, "/patients/"+pid+"/problems", url.Values{"problem": {"  "}}); bad.Status != http.StatusBadRequest {
		t.Errorf("an empty problem: %d", bad.Status)
	}
	p := s.follow(t, "/patients/"+pid+"/problems", url.Values{"problem": {"Atrial fibrillation"}, "onset": {"2026-02-11"}})
	probs := section(p.Body, "problems")
	if !strings.Contains(probs, "Atrial fibrillation") || !strings.Contains(probs, "Active") || !strings.Contains(probs, "/resolve") {
		t.Fatalf("the new problem:\n%s", probs)
	}
	i := strings.Index(probs, `action="/patients/`+pid+`/problems/`)
	action := probs[i+len(`action="`):]
	action = action[:strings.Index(action, `"`)]
	p = s.follow(t, action, url.Values{})
	probs = section(p.Body, "problems")
	if !strings.Contains(probs, "Resolved on ") || strings.Contains(probs, "/resolve") {
		t.Errorf("the resolved problem:\n%s", probs)
	}
	// Another patient's problem id under this patient is not found.
	if got := s.post(t, "/patients/"+pid+"/problems/nonexistent-id/resolve", url.Values{}); got.Status != http.StatusNotFound {
		t.Errorf("resolving a problem that is not this patient's: %d", got.Status)
	}
}
