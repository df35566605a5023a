package chart

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Writing to the chart: a clinical note (a DocumentReference with a
// text/plain attachment) and a vital sign (an Observation). Both are
// built here from validated form fields and created through the record
// service, which validates them against the R4 schema, seals them with
// the patient's key and audits the write in the same transaction.

// Limits on note fields (bytes).
const (
	maxNoteTitle = 200
	maxNoteLen   = 32 << 10
)

// obsKind is a vital sign the form offers, with a plausible range: a
// value outside it is refused as a likely typo (not a clinical rule).
type obsKind struct {
	Value, Label, Code, Display, Unit string
	Min, Max                          float64
	BP                                bool // two values: systolic and diastolic
}

var obsKinds = []obsKind{
	{"heart-rate", "Heart rate (/min)", chartview.LOINCHeartRate, "Heart rate", "/min", 20, 300, false},
	{"blood-pressure", "Blood pressure (mmHg, systolic and diastolic)", chartview.LOINCBPPanel, "Blood pressure panel with all children optional", "mm[Hg]", 20, 300, true},
	{"weight", "Body weight (kg)", chartview.LOINCWeight, "Body weight", "kg", 0.2, 650, false},
	{"temperature", "Body temperature (°C)", chartview.LOINCTemp, "Body temperature", "Cel", 25, 45, false},
	{"respiratory-rate", "Respiratory rate (/min)", chartview.LOINCResp, "Respiratory rate", "/min", 2, 100, false},
}

func kindOptions(selected string) []chartview.ObsKindOption {
	out := make([]chartview.ObsKindOption, len(obsKinds))
	for i, k := range obsKinds {
		out[i] = chartview.ObsKindOption{Value: k.Value, Label: k.Label, Selected: k.Value == selected}
	}
	return out
}

// measurement is a typed value: digits with an optional decimal part
// (point or comma); no signs, exponents or hexadecimal.
var measurement = regexp.MustCompile(`^[0-9]{1,4}([.,][0-9]{1,3})?$`)

// datetimeLocal is the format of <input type="datetime-local">.
const datetimeLocal = "2006-01-02T15:04"

// showWriteError renders the chart again with the form's values and a
// plain message (status 400 or 422), after re-reading the chart.
func (u *UI) showWriteError(w http.ResponseWriter, r *http.Request, status int, f chartview.WriteForms) error {
	v := site.ViewerFrom(r.Context())
	cv, err := chartview.Load(r.Context(), u.rec, u.now, site.Caller(r, v), r.PathValue("id"))
	if chartview.Denied(err) {
		u.renderDenied(w, r, r.PathValue("id"))
		return nil
	}
	if err != nil {
		return err
	}
	f.Kinds = kindOptions(f.ObsKind)
	cv.Form = f
	if cv.EmergencyUntil, err = u.emergencyUntil(r.Context(), v, cv.ID); err != nil {
		return err
	}
	u.site.Render(w, r, status, "chart", site.PageData{Title: "Chart", Viewer: v, Nav: "patients", Data: cv})
	return nil
}

// checkPatient reads the Patient (audited, and decided by authorization
// once it lands) before anything is written to its record.
func (u *UI) checkPatient(w http.ResponseWriter, r *http.Request) (string, bool, error) {
	id := r.PathValue("id")
	if !record.ValidID(id) {
		return "", false, site.PageErr(http.StatusNotFound, "Not found", "This record does not exist.", errors.New("invalid patient id"))
	}
	if _, err := u.rec.Read(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), "Patient", id); err != nil {
		if chartview.Denied(err) {
			u.renderDenied(w, r, id)
			return "", false, nil
		}
		return "", false, err
	}
	return id, true, nil
}

// create parses and creates a resource built here; a validation failure
// is returned as a plain message.
func (u *UI) create(r *http.Request, res map[string]any) (msg string, err error) {
	body, err := json.Marshal(res)
	if err != nil {
		return "", err
	}
	parsed, err := u.rec.Parse(body)
	if err == nil {
		_, _, err = u.rec.Create(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), parsed, "")
	}
	var re *record.Error
	if errors.As(err, &re) && (record.StatusCode(re) == http.StatusBadRequest || record.StatusCode(re) == http.StatusUnprocessableEntity) {
		// record's diagnostics never echo values.
		var parts []string
		for _, is := range re.Issues {
			parts = append(parts, is.Diagnostic)
		}
		return "It was not saved: " + strings.Join(parts, "; "), nil
	}
	return "", err
}

func (u *UI) author(r *http.Request) map[string]any {
	v := site.ViewerFrom(r.Context())
	a := map[string]any{"display": v.DisplayName}
	if strings.HasPrefix(v.FHIRUser, "Practitioner/") {
		a["reference"] = v.FHIRUser
	}
	return a
}

func (u *UI) addNote(w http.ResponseWriter, r *http.Request) error {
	f := chartview.WriteForms{NoteTitle: strings.TrimSpace(r.PostForm.Get("title")), NoteText: r.PostForm.Get("text")}
	text := strings.TrimSpace(strings.ReplaceAll(f.NoteText, "\r\n", "\n"))
	switch {
	case text == "":
		f.NoteError = "Write the note before saving it."
	case len(text) > maxNoteLen:
		f.NoteError = "The note is longer than 32 KiB; split it into several notes."
	case len(f.NoteTitle) > maxNoteTitle:
		f.NoteError = "The title is longer than 200 characters."
	case !utf8.ValidString(text) || !utf8.ValidString(f.NoteTitle):
		f.NoteError = "The note contains characters that are not text."
	}
	if f.NoteError != "" {
		return u.showWriteError(w, r, http.StatusBadRequest, f)
	}
	id, ok, err := u.checkPatient(w, r)
	if !ok {
		return err
	}
	title := noteTitle(f.NoteTitle)
	// A note is saved as a draft, or signed at once ("Save and sign").
	docStatus := "preliminary"
	if r.PostForm.Get("sign") == "sign" {
		docStatus = "final"
	}
	doc := map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"docStatus":    docStatus,
		"type": map[string]any{"coding": []any{map[string]any{"system": chartview.LOINC, "code": "11506-3", "display": "Progress note"}},
			"text": "Progress note"},
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note", "display": "Clinical Note"}}}},
		"subject":     map[string]any{"reference": ident.PatientRef(id).String()},
		"date":        u.now().UTC().Format(time.RFC3339),
		"author":      []any{u.author(r)},
		"description": title,
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "text/plain; charset=utf-8", "title": title,
			"data": base64.StdEncoding.EncodeToString([]byte(text)),
		}}},
	}
	if docStatus == "final" {
		doc["authenticator"] = u.author(r)
	}
	msg, err := u.create(r, doc)
	if err != nil {
		return err
	}
	if msg != "" {
		f.NoteError = msg
		return u.showWriteError(w, r, http.StatusUnprocessableEntity, f)
	}
	return site.Redirect(w, r, "/patients/"+id+"#notes")
}

func (u *UI) addObservation(w http.ResponseWriter, r *http.Request) error {
	f := chartview.WriteForms{ObsKind: r.PostForm.Get("kind"), ObsValue: strings.TrimSpace(r.PostForm.Get("value")),
		ObsValue2: strings.TrimSpace(r.PostForm.Get("value2")), ObsWhen: strings.TrimSpace(r.PostForm.Get("when"))}
	var kind *obsKind
	for i := range obsKinds {
		if obsKinds[i].Value == f.ObsKind {
			kind = &obsKinds[i]
		}
	}
	var v1, v2 float64
	at := u.now().UTC().Truncate(time.Second)
	parse := func(s string) (float64, bool) {
		if !measurement.MatchString(s) {
			return 0, false
		}
		x, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
		return x, err == nil && kind != nil && x >= kind.Min && x <= kind.Max
	}
	var ok bool
	switch {
	case kind == nil:
		f.ObsError = "Choose what was measured."
	case f.ObsValue == "":
		f.ObsError = "Enter the measured value."
	default:
		if v1, ok = parse(f.ObsValue); !ok {
			f.ObsError = "The value must be a number between " + chartview.FmtNum(kind.Min) + " and " + chartview.FmtNum(kind.Max) + " " + kind.Unit + "."
		} else if kind.BP {
			if v2, ok = parse(f.ObsValue2); !ok {
				f.ObsError = "Blood pressure needs a diastolic value too, a number between " + chartview.FmtNum(kind.Min) + " and " + chartview.FmtNum(kind.Max) + "."
			} else if v2 >= v1 {
				f.ObsError = "The diastolic value must be lower than the systolic value."
			}
		}
	}
	if f.ObsError == "" && f.ObsWhen != "" {
		t, err := time.Parse(datetimeLocal, f.ObsWhen)
		switch {
		case err != nil:
			f.ObsError = "Enter the time as YYYY-MM-DDTHH:MM, or leave it empty for now."
		case t.After(u.now().UTC().Add(5 * time.Minute)):
			f.ObsError = "The time of a measurement cannot be in the future."
		default:
			at = t
		}
	}
	if f.ObsError != "" {
		return u.showWriteError(w, r, http.StatusBadRequest, f)
	}
	id, ok, err := u.checkPatient(w, r)
	if !ok {
		return err
	}
	qty := func(x float64) map[string]any {
		return map[string]any{"value": x, "unit": kind.Unit, "system": "http://unitsofmeasure.org", "code": kind.Unit}
	}
	obs := map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}}}},
		"code":              map[string]any{"coding": []any{map[string]any{"system": chartview.LOINC, "code": kind.Code, "display": kind.Display}}, "text": kind.Display},
		"subject":           map[string]any{"reference": ident.PatientRef(id).String()},
		"effectiveDateTime": at.Format(time.RFC3339),
		"performer":         []any{u.author(r)},
	}
	if kind.BP {
		obs["component"] = []any{
			map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": chartview.LOINC, "code": chartview.LOINCSystolic, "display": "Systolic blood pressure"}}}, "valueQuantity": qty(v1)},
			map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": chartview.LOINC, "code": chartview.LOINCDiastolic, "display": "Diastolic blood pressure"}}}, "valueQuantity": qty(v2)},
		}
	} else {
		obs["valueQuantity"] = qty(v1)
	}
	msg, err := u.create(r, obs)
	if err != nil {
		return err
	}
	if msg != "" {
		f.ObsError = msg
		return u.showWriteError(w, r, http.StatusUnprocessableEntity, f)
	}
	return site.Redirect(w, r, "/patients/"+id+"#vitals")
}
