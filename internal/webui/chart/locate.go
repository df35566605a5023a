package chart

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// locate asks the record service which patients a name search matches
// outside the viewer's relationships (ADR 0035): the search page lists
// them by name and birth date, each with the way to break the glass,
// instead of "no patient matches". The record service decides it with
// the policy action "locate" (a patient hidden by a Consent or carrying
// a sensitive label is never located) and audits the look-up; a role
// the policies do not let locate gets nothing, silently. A look-up needs
// a name of at least three letters and uses no identifier
// (record.Service.Locate); found are the
// patients not already among the search's own results.
func (u *UI) locate(r *http.Request, v *site.Viewer, q patientQuery, found []patientRow) (rows []patientRow, more, limited bool, err error) {
	if utf8.RuneCountInString(q.Name) < record.MinLocateName || q.Identifier != "" {
		return nil, false, false, nil
	}
	if !u.locates.allow(v.P.ID) {
		return nil, false, true, nil
	}
	vals := url.Values{"name": {q.Name}}
	if q.BirthDate != "" {
		vals.Set("birthdate", q.BirthDate)
	}
	res, err := u.rec.Locate(r.Context(), site.Caller(r, v), vals)
	if err != nil {
		var re *record.Error
		if chartview.Denied(err) || errors.As(err, &re) && record.StatusCode(re) == http.StatusBadRequest {
			return nil, false, false, nil
		}
		return nil, false, false, err
	}
	for _, p := range res.Patients {
		if slices.ContainsFunc(found, func(f patientRow) bool { return f.ID == p.ID }) {
			continue
		}
		var o chartview.Obj
		if err := json.Unmarshal(p.JSON, &o); err != nil {
			return nil, false, false, err
		}
		rows = append(rows, patientRow{ID: p.ID, Name: chartview.HumanName(o), BirthDate: o.Str("birthDate")})
	}
	return rows, res.More, false, nil
}
