package webui_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/webui/export"
)

// fetchGet GETs path from the page (same origin, the session's cookie)
// and returns the status, the content type and the body.
func fetchGet(tb *tab, path string) (int, string, []byte) {
	tb.t.Helper()
	got := eval[[]any](tb, `(async function(){
	  var r = await fetch(`+jsString(path)+`, {credentials: "same-origin"});
	  var b = new Uint8Array(await r.arrayBuffer()), s = "";
	  for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
	  return [r.status, r.headers.get("Content-Type"), btoa(s)];
	})()`)
	b, err := base64.StdEncoding.DecodeString(got[2].(string))
	if err != nil {
		tb.t.Fatal(err)
	}
	return int(got[0].(float64)), got[1].(string), b
}

// TestPatientRights: a patient reads their record (results explained),
// sees who accessed it (the clinician's visit, by name), downloads that
// accounting as CSV (it parses, every row has its log position) and PDF,
// reports the access, asks for a correction, and gets their record as a
// printable summary and as a PDF. Each file is recorded in the log.
func TestPatientRights(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.rights", "Rhea Rights", true, identity.RolePhysician)
	pid := e.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient",
		"name": []any{map[string]any{"family": "Brightwater", "given": []any{"Ada"}}}, "birthDate": "1980-02-03", "gender": "female"}, nil).Want(t, 201).ID()
	e.treat(t, pid)
	e.Do(t, "POST", "/fhir/Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"subject": map[string]any{"reference": "Patient/" + pid}, "effectiveDateTime": "2026-11-02T09:00:00Z",
		"code":           map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}}},
		"valueQuantity":  map[string]any{"value": 130, "unit": "mg/dL", "code": "mg/dL", "system": "http://unitsofmeasure.org"},
		"referenceRange": []any{map[string]any{"low": map[string]any{"value": 70, "unit": "mg/dL", "code": "mg/dL"}, "high": map[string]any{"value": 99, "unit": "mg/dL", "code": "mg/dL"}}},
	}, nil).Want(t, 201)
	pat := e.addAccount(t, identity.User{Username: "ada.rights", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)

	dt := newTab(t)
	e.signIn(t, dt, doc, "#patient-search")
	dt.do(navigate(e.URL+"/patients/"+pid), waitCSS("#patient-name"))

	tb := newTab(t)
	e.signInPatient(t, tb, pat, "#portal-record")
	if got := tb.text("#observations"); !strings.Contains(got, "This result is high: above the usual range. Usual range 70 to 99 mg/dL.") {
		t.Errorf("the glucose result is not explained: %q", got)
	}

	// Who accessed my record, and its accounting as files.
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	row := tb.openVisit("Rhea Rights", "physician")
	if row == "" {
		t.Fatalf("the clinician's visit is not listed: %q", tb.text("#access-list"))
	}
	csvHref := eval[string](tb, `document.getElementById("export-csv").getAttribute("href")`)
	status, ctype, body := fetchGet(tb, csvHref)
	if status != 200 || !strings.HasPrefix(ctype, "text/csv") {
		t.Fatalf("accounting CSV: %d %s", status, ctype)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the accounting CSV does not parse: %v", err)
	}
	listed := eval[int](tb, `document.querySelectorAll("#access-list tr.access-row").length`)
	if len(recs) != listed+1 || recs[0][len(recs[0])-1] != "Log position" {
		t.Errorf("accounting CSV: %d records for %d entries listed; header %q", len(recs), listed, recs[0])
	}
	found := false
	for _, r := range recs[1:] {
		found = found || (r[1] == "Rhea Rights" && r[len(r)-1] == row)
	}
	if !found {
		t.Errorf("the CSV lacks the clinician's entry %s: %q", row, recs)
	}
	status, ctype, body = fetchGet(tb, eval[string](tb, `document.getElementById("export-pdf").getAttribute("href")`))
	if status != 200 || ctype != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Fatalf("accounting PDF: %d %s", status, ctype)
	}
	if text := strings.Join(export.Text(body), "\n"); !strings.Contains(text, "Who accessed my record") || !strings.Contains(text, "Rhea Rights") || !strings.Contains(text, row) {
		t.Errorf("the accounting PDF lacks the entry: %q", text)
	}

	// The printable summary, and the record as a PDF.
	tb.do(navigate(e.URL+"/portal/download"), waitCSS("#download-pdf"), navigate(e.URL+"/portal/summary"), waitCSS("#portal-summary"))
	tb.checkA11y()
	if got := tb.text("#summary-results"); !strings.Contains(got, "Glucose") || !strings.Contains(got, "high") {
		t.Errorf("summary results: %q", got)
	}
	status, ctype, body = fetchGet(tb, "/portal/download/record.pdf")
	if status != 200 || ctype != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) {
		t.Fatalf("record PDF: %d %s", status, ctype)
	}
	if text := strings.Join(export.Text(body), " "); !strings.Contains(text, "Brightwater, Ada") || !strings.Contains(text, "Glucose") || !strings.Contains(text, "Usual range 70 to 99 mg/dL") {
		t.Errorf("the record PDF: %q", text)
	}

	// Every file is recorded, in the patient's own trail.
	formats := map[string]int{}
	for _, ev := range e.auditEvents(t) {
		if ev.Action == audit.ActionExport && slices.Contains(ev.Patients, "Patient/"+pid) && ev.Purpose == "PATRQT" {
			for _, p := range ev.Policies {
				formats[p]++
			}
		}
	}
	if formats["format=csv"] != 1 || formats["format=pdf"] != 2 {
		t.Errorf("exports recorded: %v, want one CSV and two PDFs", formats)
	}
}
