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

// fetchExport POSTs the form css (the page's own CSRF token and fields)
// with format, and returns the status, the content type and the body,
// base64.
func fetchExport(tb *tab, css, format string) (status int, ctype string, body []byte) {
	tb.t.Helper()
	got := eval[[]any](tb, `(async function(){
	  var fd = new FormData(document.querySelector(`+jsString(css)+`));
	  fd.set("format", `+jsString(format)+`);
	  var r = await fetch(document.querySelector(`+jsString(css)+`).getAttribute("action"), {method: "POST", body: new URLSearchParams(fd), credentials: "same-origin"});
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

// TestPrivacyLookupExport: the privacy officer finds a patient by name
// (no UUID typed), opens the audit events about them (actions in words,
// the clinician by name), opens one event, and exports the search as
// CSV (it parses, formula cells are quoted) and as PDF (it is a PDF and
// holds the rows); a staff member is found by name too. Each lookup and
// each export is in the audit log.
func TestPrivacyLookupExport(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.lookup", "Dana Lookup", true, identity.RolePhysician)
	po := e.addUser(t, "privacy.lk", "Priya Lookup", true, identity.RolePrivacyOfficer)
	pid := e.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient",
		"name": []any{map[string]any{"family": "Quillfeather", "given": []any{"Wren"}}}, "birthDate": "1971-04-05", "gender": "female",
		"identifier": []any{map[string]any{"system": "urn:oid:1.2.3.4.5", "value": "MRN-4711",
			"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}}}}}}, nil).Want(t, 201).ID()
	e.treat(t, pid)

	dt := newTab(t)
	e.signIn(t, dt, doc, "#patient-search")
	dt.do(navigate(e.URL+"/patients/"+pid), waitCSS("#patient-name"))

	tb := newTab(t)
	e.signIn(t, tb, po, "#home")
	tb.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-patient"))
	tb.checkA11y()
	tb.do(fill("#lp-name", "Quillfeather"), submit("#lookup-patient button[type=submit]", "#lookup-results"))
	if strings.Contains(tb.location(), "Quillfeather") {
		t.Errorf("the name is in the URL: %s", tb.location())
	}
	if got := tb.text("#lookup-patients"); !strings.Contains(got, "Quillfeather, Wren") || !strings.Contains(got, "1971-04-05") {
		t.Fatalf("lookup by name: %q", got)
	}
	tb.checkA11y()
	// By identifier and by birth date too.
	tb.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-patient"), fill("#lp-identifier", "MRN-4711"), submit("#lookup-patient button[type=submit]", "#lookup-results"))
	if got := tb.text("#lookup-patients"); !strings.Contains(got, "Quillfeather, Wren") || !strings.Contains(got, "MRN-4711") {
		t.Fatalf("lookup by identifier: %q", got)
	}
	tb.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-patient"), fill("#lp-birthdate", "1971-04-05"), submit("#lookup-patient button[type=submit]", "#lookup-results"))
	if got := tb.text("#lookup-patients"); !strings.Contains(got, "Quillfeather, Wren") {
		t.Fatalf("lookup by birth date: %q", got)
	}
	tb.do(submit("#lookup-patients .audit-about button", "#audit-results"))
	got := tb.text("#audit-results")
	if !strings.Contains(got, "Dana Lookup (dr.lookup)") || !strings.Contains(got, "viewed the chart") {
		t.Errorf("audit events about the patient: want the clinician by name and the action in words: %q", got)
	}
	rows := eval[int](tb, `document.querySelectorAll("#audit-results tr.audit-row").length`)

	// Export: CSV and PDF of the same search, each a file.
	status, ctype, csvBody := fetchExport(tb, "#audit-export", "csv")
	if status != 200 || !strings.HasPrefix(ctype, "text/csv") {
		t.Fatalf("CSV export: %d %s %s", status, ctype, csvBody)
	}
	recs, err := csv.NewReader(bytes.NewReader(csvBody)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(recs) != rows+1 || !slices.Contains(recs[0], "What was done") {
		t.Errorf("CSV: %d records (want a header and %d rows), header %q", len(recs), rows, recs[0])
	}
	chart := false
	for _, r := range recs[1:] {
		chart = chart || (slices.Contains(r, "viewed the chart") && slices.Contains(r, "Dana Lookup (dr.lookup)") && slices.Contains(r, "Patient/"+pid))
	}
	if !chart {
		t.Errorf("the CSV lacks the chart view: %q", recs)
	}
	status, ctype, pdf := fetchExport(tb, "#audit-export", "pdf")
	if status != 200 || ctype != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("PDF export: %d %s %q", status, ctype, pdf[:min(len(pdf), 8)])
	}
	text := strings.Join(export.Text(pdf), "\n")
	if !strings.Contains(text, "Audit log export") || !strings.Contains(text, "viewed the chart") || !strings.Contains(text, "Patient/"+pid) {
		t.Errorf("the PDF lacks the rows: %q", text)
	}

	// One event, its action in words.
	tb.do(submit("#audit-results tbody a", "#audit-event"))
	if got := tb.text("#ev-words"); got == "" {
		t.Errorf("the event's action is not in words")
	}

	// A staff member by name.
	tb.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-staff"), fill("#ls-name", "dana look"), submit("#lookup-staff button[type=submit]", "#lookup-results"))
	if got := tb.text("#lookup-staff-results"); !strings.Contains(got, "Dana Lookup") || !strings.Contains(got, "dr.lookup") {
		t.Fatalf("staff lookup: %q", got)
	}
	tb.do(submit("#lookup-staff-results .audit-by button", "#audit-results"))
	if got := tb.text("#audit-results"); !strings.Contains(got, "Dana Lookup (dr.lookup)") {
		t.Errorf("events by the staff member: %q", got)
	}

	// Bad input: a plain message, not a 500.
	tb.ignore(`status of 400 \(Bad Request\)`)
	tb.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-patient"), fill("#lp-birthdate", "yesterday"), submit("#lookup-patient button[type=submit]", "#lookup-error"))

	// The lookups and the exports are audited, by the officer.
	var poID, docID string
	for _, x := range mustList(t, e) {
		switch x.Username {
		case po.Username:
			poID = x.ID
		case doc.Username:
			docID = x.ID
		}
	}
	var patientLookup, staffLookup bool
	formats := map[string]bool{}
	for _, ev := range e.auditEvents(t) {
		if ev.Agent.User != poID {
			continue
		}
		switch {
		case ev.Action == audit.ActionSearch && strings.HasPrefix(ev.Query, "Patient?") && strings.Contains(ev.Query, "name"):
			patientLookup = true
		case ev.Action == audit.ActionPeopleLookup && slices.Contains(ev.Entities, "User/"+docID) && !strings.Contains(ev.Query, "dana"):
			staffLookup = true
		case ev.Action == audit.ActionExport && slices.Contains(ev.Patients, "Patient/"+pid) && len(ev.Entities) == rows:
			for _, p := range ev.Policies {
				formats[p] = true
			}
		}
	}
	if !patientLookup || !staffLookup || !formats["format=csv"] || !formats["format=pdf"] {
		t.Errorf("audited: patient lookup %t, staff lookup %t, exports %v", patientLookup, staffLookup, formats)
	}
}
