package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/identity"
)

// noteIDs are the ids of the notes listed on a chart page, in order.
func noteIDs(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<li id="note-([A-Za-z0-9.-]+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// noteItem is the HTML of one note of a chart page, addenda included.
func noteItem(body, id string) string {
	i := strings.Index(body, `<li id="note-`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</li>")
	return body[i : i+j]
}

// TestSignedNotes: a note is a draft until its author signs it; a
// signed note is never edited, through the chart or through the FHIR
// API (PUT, PATCH, DELETE are refused; only its status may change, to
// entered-in-error), and is amended by an addendum shown beneath it.
func TestSignedNotes(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.sign", "Signe Sign", true, identity.RolePhysician)
	colleague := e.addUser(t, "dr.colleague", "Col League", true, identity.RolePhysician)
	pid := e.storePatient(t, "Notewright", "1950-05-05", nil)
	e.careTeam(t, pid, doc.FHIRUser)
	e.careTeam(t, pid, colleague.FHIRUser)
	s := e.sessionFor(t, doc)
	chart := "/patients/" + pid

	p := s.follow(t, chart+"/notes", url.Values{"title": {"Admission"}, "text": {"Chest pain."}, "sign": {"draft"}})
	ids := noteIDs(p.Body)
	if len(ids) != 1 {
		t.Fatalf("notes after a draft: %v", ids)
	}
	nid := ids[0]
	item := noteItem(p.Body, nid)
	if !strings.Contains(item, "Draft, not signed") || !strings.Contains(item, "/notes/"+nid+"/sign") || strings.Contains(item, "addenda") {
		t.Errorf("a draft shows:\n%s", item)
	}
	// Only the author signs; an addendum needs a signed note.
	c := e.sessionFor(t, colleague)
	if got := c.post(t, chart+"/notes/"+nid+"/sign", url.Values{}); got.Status != http.StatusForbidden {
		t.Errorf("a colleague signs the draft: %d", got.Status)
	}
	if got := s.post(t, chart+"/notes/"+nid+"/addenda", url.Values{"text": {"more"}}); got.Status != http.StatusConflict {
		t.Errorf("an addendum to a draft: %d", got.Status)
	}

	// The author edits the draft; a colleague may not.
	if got := c.post(t, chart+"/notes/"+nid, url.Values{"title": {"Mine now"}, "text": {"x"}}); got.Status != http.StatusForbidden {
		t.Errorf("a colleague edits the draft: %d", got.Status)
	}
	p = s.follow(t, chart+"/notes/"+nid, url.Values{"title": {"Admission note"}, "text": {"Chest pain since this morning."}})
	if item := noteItem(p.Body, nid); !strings.Contains(item, "Chest pain since this morning.") || !strings.Contains(item, "Draft, not signed") {
		t.Errorf("the edited draft:\n%s", item)
	}

	p = s.follow(t, chart+"/notes/"+nid+"/sign", url.Values{})
	item = noteItem(p.Body, nid)
	if !strings.Contains(item, "Signed by Signe Sign") || strings.Contains(item, "Draft") || !strings.Contains(item, "/notes/"+nid+"/addenda") {
		t.Errorf("a signed note shows:\n%s", item)
	}
	if got := s.post(t, chart+"/notes/"+nid+"/sign", url.Values{}); got.Status != http.StatusConflict {
		t.Errorf("signing again: %d", got.Status)
	}
	if got := s.post(t, chart+"/notes/"+nid, url.Values{"title": {"Admission note"}, "text": {"Rewritten after signing."}}); got.Status != http.StatusConflict {
		t.Errorf("editing a signed note in the chart: %d", got.Status)
	}

	// Over FHIR, with a service token that may write anything: the
	// signed note cannot be edited nor deleted.
	stored := e.Do(t, "GET", "/fhir/DocumentReference/"+nid, nil, nil).Want(t, 200).JSON
	if stored["docStatus"] != "final" {
		t.Fatalf("stored docStatus %v", stored["docStatus"])
	}
	edited := clone(stored)
	edited["description"] = "Rewritten"
	e.Do(t, "PUT", "/fhir/DocumentReference/"+nid, edited, nil).WantOutcome(t, http.StatusUnprocessableEntity)
	back := clone(stored)
	back["docStatus"] = "preliminary"
	e.Do(t, "PUT", "/fhir/DocumentReference/"+nid, back, nil).WantOutcome(t, http.StatusUnprocessableEntity)
	e.Do(t, "PATCH", "/fhir/DocumentReference/"+nid, []any{map[string]any{"op": "replace", "path": "/description", "value": "Patched"}},
		apitest.H{"Content-Type": "application/json-patch+json"}).WantOutcome(t, http.StatusUnprocessableEntity)
	e.Do(t, "DELETE", "/fhir/DocumentReference/"+nid, nil, nil).WantOutcome(t, http.StatusUnprocessableEntity)

	p = s.follow(t, chart+"/notes/"+nid+"/addenda", url.Values{"text": {"Troponin came back normal."}})
	item = noteItem(p.Body, nid)
	if !strings.Contains(item, "Chest pain since this morning.") || !strings.Contains(item, "Addendum") || !strings.Contains(item, "Troponin came back normal.") {
		t.Errorf("the note with its addendum:\n%s", item)
	}
	if len(noteIDs(p.Body)) != 1 {
		t.Errorf("the addendum is listed as a note of its own")
	}
	after := e.Do(t, "GET", "/fhir/DocumentReference/"+nid, nil, nil).Want(t, 200).JSON
	if after["description"] != "Admission note" || after["docStatus"] != "final" {
		t.Errorf("the signed note changed: %v", after)
	}
	// Labelling it (meta) is not editing it.
	labelled := e.Do(t, "GET", "/fhir/DocumentReference/"+nid, nil, nil).Want(t, 200).JSON
	meta := clone(labelled["meta"].(map[string]any))
	meta["security"] = []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}}
	labelled["meta"] = meta
	e.Do(t, "PUT", "/fhir/DocumentReference/"+nid, labelled, nil).Want(t, http.StatusOK)
	stored = e.Do(t, "GET", "/fhir/DocumentReference/"+nid, nil, nil).Want(t, 200).JSON

	// Voiding it keeps what was signed.
	void := clone(stored)
	void["status"] = "entered-in-error"
	e.Do(t, "PUT", "/fhir/DocumentReference/"+nid, void, nil).Want(t, http.StatusOK)
	if item := noteItem(s.get(t, chart).Body, nid); !strings.Contains(item, "Entered in error") || !strings.Contains(item, "Chest pain") {
		t.Errorf("a voided note shows:\n%s", item)
	}

	// The patient sees signed notes and their addenda, not drafts.
	s.follow(t, chart+"/notes", url.Values{"title": {"Thoughts"}, "text": {"Unsigned thoughts."}, "sign": {"draft"}})
	pat := e.addAccount(t, identity.User{Username: "nw.patient", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)
	portal := e.patientSession(t, pat).get(t, "/portal")
	if !strings.Contains(portal.Body, "Chest pain since this morning.") || !strings.Contains(portal.Body, "Troponin came back normal.") || strings.Contains(portal.Body, "Unsigned thoughts.") {
		t.Errorf("the portal's notes:\n%s", section(portal.Body, "notes"))
	}

	// Save and sign at once.
	p = s.follow(t, chart+"/notes", url.Values{"title": {"Discharge"}, "text": {"Home today."}, "sign": {"sign"}})
	var discharge string
	for _, id := range noteIDs(p.Body) {
		if item := noteItem(p.Body, id); strings.Contains(item, "Discharge") {
			discharge = item
		}
	}
	if !strings.Contains(discharge, "Signed by Signe Sign") || strings.Contains(discharge, "Draft") {
		t.Errorf("a note saved and signed shows:\n%s", discharge)
	}
}

// clone copies a decoded JSON object (one level deep is enough for the
// fields the tests change).
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
