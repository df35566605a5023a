package desk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The patient page: demographics (the front desk's masked view), their
// edit form, and the care-team assignment.

type patientView struct {
	ID, Name, MRN string
	Version       int64
	Form          demographics
	Genders       []string
	Error, Saved  string
	Clinicians    []clinician
	AssignError   string
	Assigned      string
}

type clinician struct {
	ID, Name, Role string
}

// maxClinicians bounds the accounts listed for assignment.
const maxClinicians = 500

// clinicians lists enabled physician and nurse accounts linked to a
// Practitioner, by display name.
func (u *UI) clinicians(ctx context.Context) ([]clinician, error) {
	var out []clinician
	after := ""
	for len(out) < maxClinicians {
		page, err := u.users.List(ctx, after, identity.MaxPage)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			if c, ok := asClinician(a); ok {
				out = append(out, c)
			}
		}
		if len(page) < identity.MaxPage {
			break
		}
		after = page[len(page)-1].Username
	}
	return out, nil
}

func asClinician(a identity.User) (clinician, bool) {
	if a.Disabled || !strings.HasPrefix(a.FHIRUser, "Practitioner/") {
		return clinician{}, false
	}
	role := ""
	switch {
	case a.HasRole(identity.RolePhysician):
		role = "physician"
	case a.HasRole(identity.RoleNurse):
		role = "nurse"
	default:
		return clinician{}, false
	}
	name := a.DisplayName
	if name == "" {
		name = a.Username
	}
	return clinician{ID: a.ID, Name: name, Role: role}, true
}

// readPatient reads Patient id as the viewer (masked for the front
// desk).
func (u *UI) readPatient(r *http.Request, id string) (record.Stored, chartview.Obj, error) {
	if !record.ValidID(id) {
		return record.Stored{}, nil, site.PageErr(http.StatusNotFound, "Not found", "There is no such patient.", errors.New("invalid patient id"))
	}
	st, err := u.rec.Read(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), "Patient", id)
	if err != nil {
		var re *record.Error
		if errors.As(err, &re) && (record.StatusCode(re) == http.StatusNotFound || record.StatusCode(re) == http.StatusForbidden) {
			return record.Stored{}, nil, site.PageErr(record.StatusCode(re), "Not available", "This patient cannot be opened here.", err)
		}
		return record.Stored{}, nil, err
	}
	var p chartview.Obj
	if err := json.Unmarshal(st.JSON, &p); err != nil {
		return record.Stored{}, nil, err
	}
	return st, p, nil
}

func (u *UI) renderPatient(w http.ResponseWriter, r *http.Request, status int, pv patientView) error {
	st, p, err := u.readPatient(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	pv.ID, pv.Name, pv.MRN, pv.Version, pv.Genders = st.ID, chartview.HumanName(p), chartview.MRN(p), st.Version, genders
	if pv.Form == (demographics{}) {
		pv.Form = demographicsOf(p)
	}
	if pv.Clinicians, err = u.clinicians(r.Context()); err != nil {
		return err
	}
	u.site.Render(w, r, status, "desk-patient", site.PageData{Title: "Patient registration", Viewer: site.ViewerFrom(r.Context()), Nav: "desk", Data: pv})
	return nil
}

func (u *UI) patientPage(w http.ResponseWriter, r *http.Request) error {
	pv := patientView{}
	switch r.URL.Query().Get("done") {
	case "saved":
		pv.Saved = "The demographics were saved."
	case "assigned":
		pv.Assigned = "The clinician was added to the patient's care team."
	}
	return u.renderPatient(w, r, http.StatusOK, pv)
}

// saveDemographics updates the demographics of the version the form was
// built from (If-Match: a concurrent change is refused, not lost).
func (u *UI) saveDemographics(w http.ResponseWriter, r *http.Request) error {
	d := demographicsFrom(r)
	if msg := d.validate(); msg != "" {
		return u.renderPatient(w, r, http.StatusBadRequest, patientView{Form: d, Error: msg})
	}
	version, err := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if err != nil || version < 1 {
		return u.renderPatient(w, r, http.StatusBadRequest, patientView{Form: d, Error: "The form is out of date. Open the patient again."})
	}
	_, p, err := u.readPatient(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	// The view is masked: the record keeps what the mask hides, and
	// drops the view's REDACTED label (ADR 0033).
	d.apply(p)
	res, err := u.parse(p)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	_, _, err = u.rec.Update(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), "Patient", id, res, version)
	if msg := refusal(err); msg != "" {
		return u.renderPatient(w, r, http.StatusConflict, patientView{Form: d, Error: msg})
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/desk/patients/"+id+"?done=saved")
}

// maxTeamName bounds the care team's name, in bytes.
const maxTeamName = 100

// assign puts a clinician on the patient's care team: a new CareTeam
// (active, from now) naming the clinician's Practitioner. The create is
// decided (front-desk-registration) and audited with the patient.
func (u *UI) assign(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	team := strings.TrimSpace(r.PostForm.Get("team"))
	if len(team) > maxTeamName || !utf8.ValidString(team) {
		return u.renderPatient(w, r, http.StatusBadRequest, patientView{AssignError: "The team name is text of at most 100 characters."})
	}
	acct, err := u.users.ByID(r.Context(), r.PostForm.Get("clinician"))
	c, ok := asClinician(acct)
	if err != nil || !ok {
		return u.renderPatient(w, r, http.StatusBadRequest, patientView{AssignError: "Choose a physician or nurse from the list."})
	}
	if _, _, err := u.readPatient(r, id); err != nil {
		return err
	}
	if team == "" {
		team = "Care team"
	}
	ct := map[string]any{
		"resourceType": "CareTeam",
		"status":       "active",
		"name":         team,
		"subject":      map[string]any{"reference": ident.PatientRef(id).String()},
		"period":       map[string]any{"start": u.now().UTC().Format("2006-01-02T15:04:05Z")},
		"participant": []any{map[string]any{
			"member": map[string]any{"reference": acct.FHIRUser, "display": c.Name},
			"period": map[string]any{"start": u.now().UTC().Format("2006-01-02T15:04:05Z")},
		}},
	}
	res, err := u.parse(ct)
	if err != nil {
		return err
	}
	_, _, err = u.rec.Create(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), res, "")
	if msg := refusal(err); msg != "" {
		return u.renderPatient(w, r, http.StatusUnprocessableEntity, patientView{AssignError: msg})
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/desk/patients/"+id+"?done=assigned")
}

// search finds patients by name and birth date (POSTed; answered in the
// response, so no term is in a URL).
func (u *UI) search(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	name, birth := strings.TrimSpace(r.PostForm.Get("name")), strings.TrimSpace(r.PostForm.Get("birthdate"))
	hv := homeView{Name: name, BirthDate: birth, Done: true}
	switch {
	case name == "" && birth == "":
		hv.Error, hv.Done = "Enter a name or a birth date.", false
	case len(name) > maxField || !utf8.ValidString(name):
		hv.Error, hv.Done = "The name is text of at most 100 characters.", false
	case birth != "" && !datePattern.MatchString(birth):
		hv.Error, hv.Done = "Enter the birth date as YYYY-MM-DD.", false
	}
	if hv.Error != "" {
		u.site.Render(w, r, http.StatusBadRequest, "desk", site.PageData{Title: "Front desk", Viewer: v, Nav: "desk", Data: hv})
		return nil
	}
	q := url.Values{"_count": {"50"}}
	if name != "" {
		q.Set("name", name)
	}
	if birth != "" {
		q.Set("birthdate", birth)
	}
	page, err := u.rec.Search(r.Context(), site.Caller(r, v), "Patient", q, chartview.SearchOptions())
	if err != nil {
		var re *record.Error
		if errors.As(err, &re) && record.StatusCode(re) < 500 {
			return site.PageErr(record.StatusCode(re), "Search not possible", "The search could not be run. Check what you typed and try again.", err)
		}
		return err
	}
	found, err := chartview.BundleResources(page.Bundle)
	if err != nil {
		return err
	}
	for _, p := range found {
		hv.Results = append(hv.Results, resultRow{ID: p.Str("id"), Name: chartview.HumanName(p), BirthDate: p.Str("birthDate"), MRN: chartview.MRN(p)})
	}
	u.site.Render(w, r, http.StatusOK, "desk", site.PageData{Title: "Front desk", Viewer: v, Nav: "desk", Data: hv})
	return nil
}

type homeView struct {
	Name, BirthDate, Error string
	Done                   bool
	Results                []resultRow
}

type resultRow struct{ ID, Name, BirthDate, MRN string }

func (u *UI) home(w http.ResponseWriter, r *http.Request) error {
	u.site.Render(w, r, http.StatusOK, "desk", site.PageData{Title: "Front desk", Viewer: site.ViewerFrom(r.Context()), Nav: "desk", Data: homeView{}})
	return nil
}
