package portal

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The privacy office's lookup of people: a patient by name, identifier,
// birth date or record id, or a staff member by name, so that the
// officer never has to work with UUIDs. The terms are POSTed and the
// results rendered in the answer (no term in a URL, nothing stored).
// A patient lookup is an ordinary Patient search through the record
// service with the officer's own authorization (Cedar policy
// "privacy-officer-patient-lookup": demographics only) and is audited
// by it; a staff lookup reads the directory and is recorded by
// privacy.Trail (people-lookup). Each result offers the officer's next
// step: the audit events about the patient or by the staff member (a
// POST to the console's audit search).

// lookupResults bounds a patient lookup's answer.
const lookupResults = 50

// maxLookupTerm bounds each field, in bytes.
const maxLookupTerm = 100

var lookupBirthDate = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2})?)?$`)

type lookupForm struct {
	Kind                                   string // "patient" or "staff"
	Name, Identifier, BirthDate, PatientID string
	Staff                                  string
}

type lookupPatient struct {
	Ref, Name, BirthDate, Gender, MRN string
}

type lookupStaff struct {
	ID, Name, Username, Roles string
}

type lookupView struct {
	Form     lookupForm
	Error    string
	Done     bool
	Patients []lookupPatient
	Staff    []lookupStaff
	More     bool
	Ready    bool // the staff lookup is available (trail configured)
}

func (u *UI) lookupPage(w http.ResponseWriter, r *http.Request) error {
	u.renderLookup(w, r, http.StatusOK, lookupView{Ready: u.trail != nil})
	return nil
}

func (u *UI) renderLookup(w http.ResponseWriter, r *http.Request, status int, view lookupView) {
	u.site.Render(w, r, status, "privacy-lookup", site.PageData{Title: "Find a person", Viewer: site.ViewerFrom(r.Context()), Nav: "privacy", Data: view})
}

func (u *UI) lookupSubmit(w http.ResponseWriter, r *http.Request) error {
	f := r.PostForm
	form := lookupForm{Kind: f.Get("kind"), Name: strings.TrimSpace(f.Get("name")), Identifier: strings.TrimSpace(f.Get("identifier")),
		BirthDate: strings.TrimSpace(f.Get("birthdate")), PatientID: strings.TrimPrefix(strings.TrimSpace(f.Get("patient")), ident.PatientPrefix),
		Staff: strings.TrimSpace(f.Get("staff"))}
	view := lookupView{Form: form, Ready: u.trail != nil}
	bad := func(msg string) error {
		view.Error = msg
		u.renderLookup(w, r, http.StatusBadRequest, view)
		return nil
	}
	for _, s := range []string{form.Name, form.Identifier, form.BirthDate, form.PatientID, form.Staff} {
		if len(s) > maxLookupTerm || !utf8.ValidString(s) {
			return bad("Each field holds at most 100 characters of text.")
		}
	}
	v := site.ViewerFrom(r.Context())
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	switch form.Kind {
	case "patient":
		q := url.Values{"_count": {strconv.Itoa(lookupResults)}}
		switch {
		case form.Name == "" && form.Identifier == "" && form.BirthDate == "" && form.PatientID == "":
			return bad("Enter a name, an identifier, a birth date or a record id.")
		case form.BirthDate != "" && !lookupBirthDate.MatchString(form.BirthDate):
			return bad("Enter the birth date as YYYY-MM-DD (or YYYY, or YYYY-MM).")
		case form.PatientID != "" && !record.ValidID(form.PatientID):
			return bad("A record id is letters, digits, '-' and '.', as shown in the audit log after Patient/.")
		}
		for k, val := range map[string]string{"name": form.Name, "identifier": form.Identifier, "birthdate": form.BirthDate, "_id": form.PatientID} {
			if val != "" {
				q.Set(k, val)
			}
		}
		page, err := u.rec.Search(r.Context(), c, "Patient", q, chartview.SearchOptions())
		if chartview.Denied(err) {
			return site.PageErr(http.StatusForbidden, "Lookup not allowed", "Your access policy does not allow this lookup (an identifier lookup may be refused where identifiers are masked).", err)
		}
		var re *record.Error
		if errors.As(err, &re) && record.StatusCode(re) == http.StatusBadRequest {
			return bad("The lookup could not be run. Check what you typed and try again.")
		}
		if err != nil {
			return err
		}
		view.Patients, view.More, err = lookupPatients(page.Bundle)
		if err != nil {
			return err
		}
	case "staff":
		if u.trail == nil {
			return site.PageErr(http.StatusServiceUnavailable, "Lookup unavailable", "Staff lookup is not available on this server.", errors.New("no trail"))
		}
		us, err := u.trail.Staff(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}, u.users, form.Staff)
		if errors.Is(err, privacy.ErrLookup) {
			return bad("Enter a part of a name or username.")
		}
		if errors.Is(err, audit.ErrUnavailable) {
			return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
				Msg: "The lookup could not be recorded in the audit log, so nothing was shown. Try again in a moment.", RetryAfter: time.Second, Err: err}
		}
		if err != nil {
			return err
		}
		for _, x := range us {
			view.Staff = append(view.Staff, lookupStaff{ID: x.ID, Name: x.DisplayName, Username: x.Username, Roles: roleList(x.Roles)})
		}
	default:
		return bad("Choose whom to look for: a patient or a staff member.")
	}
	view.Done = true
	u.renderLookup(w, r, http.StatusOK, view)
	return nil
}

func roleList(rs []identity.Role) string {
	out := make([]string, len(rs))
	for i, x := range rs {
		out[i] = strings.ReplaceAll(string(x), "-", " ")
	}
	return strings.Join(out, ", ")
}

// lookupPatients reads the Patients of a searchset Bundle, and whether
// it has a next page.
func lookupPatients(bundle []byte) ([]lookupPatient, bool, error) {
	res, err := chartview.BundleResources(bundle)
	if err != nil {
		return nil, false, err
	}
	out := make([]lookupPatient, 0, len(res))
	for _, p := range res {
		if p.Str("resourceType") != "Patient" {
			continue
		}
		out = append(out, lookupPatient{Ref: ident.PatientRef(p.Str("id")).String(), Name: chartview.HumanName(p), BirthDate: p.Str("birthDate"),
			Gender: p.Str("gender"), MRN: chartview.MRN(p)})
	}
	return out, chartview.NextPage(bundle) != "", nil
}
