package webui_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

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

	// "I don't recognise this": the report reaches the privacy office.
	tb.do(chromedp.Click(chromedp.CSS("#access-"+row+" a.report")), waitCSS("#report-form"),
		fill("#report-comment", "Was this my visit?"), submit("#report-form button[type=submit]", "#report-sent"))

	// Ask for a correction: which part, what is wrong, what it should say.
	tb.do(navigate(e.URL+"/portal"), waitCSS("#link-corrections"), submit("#link-corrections", "#correction-form"))
	tb.checkA11y()
	tb.do(chromedp.SetValue(chromedp.CSS("#c-part"), "allergies"), fill("#c-wrong", "Penicillin allergy is missing", "#c-should", "Allergic to penicillin (rash)"),
		submit("#correction-form button[type=submit]", "#correction-sent"))
	if got := tb.text("#my-corrections"); !strings.Contains(got, "Allergies") || !strings.Contains(got, "Penicillin allergy is missing") || !strings.Contains(got, "Waiting for a decision") {
		t.Errorf("my requests: %q", got)
	}
	// Nothing of it is in the database in clear.
	for _, f := range []string{"", "-wal"} {
		if b, err := os.ReadFile(e.App.Config.Storage.SQLitePath + f); err == nil && bytes.Contains(b, []byte("Penicillin allergy")) {
			t.Errorf("the request is in clear in the database%s file", f)
		}
	}
	// The care team sees it on the chart.
	dt.do(navigate(e.URL+"/patients/"+pid), waitCSS("#corrections"))
	if got := dt.text("#corrections"); !strings.Contains(got, "Penicillin allergy is missing") || !strings.Contains(got, "waiting for the privacy office") {
		t.Errorf("the chart's correction requests: %q", got)
	}
	// The privacy office finds the report and the request, by the
	// patient's name, and denies the request with its reason.
	po := e.addUser(t, "privacy.rights", "Pat Office", true, identity.RolePrivacyOfficer)
	pt := newTab(t)
	e.signIn(t, pt, po, "#home")
	pt.do(navigate(e.URL+"/privacy/reports"), waitCSS("#reports-list"))
	if got := pt.text("#reports-list"); !strings.Contains(got, "Brightwater, Ada") || !strings.Contains(got, row) {
		t.Errorf("the report, by the patient's name and the log position: %q", got)
	}
	pt.do(submit("#corrections-link", "#privacy-corrections"))
	pt.checkA11y()
	if got := pt.text("#corrections-list"); !strings.Contains(got, "Brightwater, Ada") || !strings.Contains(got, "Penicillin allergy is missing") {
		t.Fatalf("the correction queue: %q", got)
	}
	const reason = "Our allergy test of 2026-10-01 was negative."
	pt.do(chromedp.Click(chromedp.CSS(".decide-correction input[value=deny]")), fill(".decide-correction textarea", reason),
		submit(".decide-correction button[type=submit]", "#correction-decided"))
	tb.do(navigate(e.URL+"/portal/corrections"), waitCSS("#my-corrections"))
	if got := tb.text("#my-corrections"); !strings.Contains(got, "Denied") || !strings.Contains(got, reason) || !strings.Contains(got, "statement of disagreement") {
		t.Errorf("the patient's view of the denial: %q", got)
	}
	tb.do(submit("#my-corrections a.disagree", "#correction-form"))
	if got := eval[string](tb, `document.getElementById("c-part").value`); got != "disagreement" {
		t.Errorf("the statement of disagreement's form: part %q", got)
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

	// Every file and every step of the request is recorded, in the
	// patient's own trail.
	steps := map[audit.Action]bool{}
	formats := map[string]int{}
	for _, ev := range e.auditEvents(t) {
		if slices.Contains(ev.Patients, "Patient/"+pid) {
			steps[ev.Action] = true
		}
		if ev.Action == audit.ActionExport && slices.Contains(ev.Patients, "Patient/"+pid) && ev.Purpose == "PATRQT" {
			for _, p := range ev.Policies {
				formats[p]++
			}
		}
	}
	if formats["format=csv"] != 1 || formats["format=pdf"] != 2 {
		t.Errorf("exports recorded: %v, want one CSV and two PDFs", formats)
	}
	for _, a := range []audit.Action{audit.ActionAccessReport, audit.ActionAmendmentRequest, audit.ActionAmendmentRead, audit.ActionAmendmentDecide} {
		if !steps[a] {
			t.Errorf("no %s event in the patient's trail", a)
		}
	}
}
