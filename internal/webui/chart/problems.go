package chart

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The problem list: a problem is a Condition of category
// problem-list-item. Adding one records it active and confirmed, in
// the clinician's words (code.text); resolving sets its clinicalStatus
// to resolved with the date (abatementDateTime). Both are writes through
// the record service as the viewer (decided, validated, audited).

const (
	maxProblemLen  = 200
	clinicalSystem = "http://terminology.hl7.org/CodeSystem/condition-clinical"
)

// addProblem adds a problem to the list.
func (u *UI) addProblem(w http.ResponseWriter, r *http.Request) error {
	text := strings.TrimSpace(r.PostForm.Get("problem"))
	switch {
	case text == "":
		return site.PageErr(http.StatusBadRequest, "Nothing to add", "Name the problem before adding it.", errors.New("problem: empty"))
	case len(text) > maxProblemLen || !utf8.ValidString(text):
		return site.PageErr(http.StatusBadRequest, "Not added", "Name the problem in text of at most 200 characters.", errors.New("problem: too long or not text"))
	}
	onset := strings.TrimSpace(r.PostForm.Get("onset"))
	if onset != "" && !birthDatePattern.MatchString(onset) {
		return site.PageErr(http.StatusBadRequest, "Not added", "Enter the onset as YYYY-MM-DD, or leave it empty.", errors.New("problem: bad onset"))
	}
	pid, ok, err := u.checkPatient(w, r)
	if !ok {
		return err
	}
	cond := map[string]any{
		"resourceType":   "Condition",
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{"system": clinicalSystem, "code": "active", "display": "Active"}}},
		"verificationStatus": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed", "display": "Confirmed"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item", "display": "Problem List Item"}}}},
		"code":         map[string]any{"text": text},
		"subject":      map[string]any{"reference": ident.PatientRef(pid).String()},
		"recordedDate": u.now().UTC().Format("2006-01-02"),
		"recorder":     u.author(r),
	}
	if onset != "" {
		cond["onsetDateTime"] = onset
	}
	msg, err := u.create(r, cond)
	if err != nil {
		return err
	}
	if msg != "" {
		return site.PageErr(http.StatusUnprocessableEntity, "Not added", msg, errors.New("problem refused by the record"))
	}
	return site.Redirect(w, r, "/patients/"+pid+"#problems")
}

// resolveProblem marks a problem resolved today.
func (u *UI) resolveProblem(w http.ResponseWriter, r *http.Request) error {
	pid, ok, err := u.checkPatient(w, r)
	if !ok {
		return err
	}
	cid := r.PathValue("cid")
	notFound := site.PageErr(http.StatusNotFound, "Not found", "There is no such problem in this record.", errors.New("problem not found"))
	st, err := u.readOwn(r, pid, "Condition", cid)
	if err != nil {
		if errors.Is(err, errNotThisPatient) {
			return notFound
		}
		return err
	}
	var c chartview.Obj
	if err := json.Unmarshal(st.JSON, &c); err != nil {
		return err
	}
	c["clinicalStatus"] = map[string]any{"coding": []any{map[string]any{"system": clinicalSystem, "code": "resolved", "display": "Resolved"}}}
	c["abatementDateTime"] = u.now().UTC().Format("2006-01-02")
	if err := u.write(r, "Condition", cid, c, st.Version); err != nil {
		return err
	}
	return site.Redirect(w, r, "/patients/"+pid+"#problems")
}
