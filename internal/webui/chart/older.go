package chart

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Paging beyond the chart's latest entries: the chart's encounters,
// documents, observations, laboratory results and diagnostic reports
// show the latest page, with an "Older" link to
// /patients/{id}/older/{section}?page=<token>. The token is the record
// service's sealed paging cursor (the FHIR API's next link): opaque, no
// search value in clear, and the search it continues runs again as the
// viewer (decided, audited). Every entry must be this patient's, so a
// token of another search cannot show another record under this
// patient's name.

// olderSections are the paged sections: their type and title.
var olderSections = map[string]struct{ typ, title string }{
	"encounters":   {"Encounter", "Encounters"},
	"documents":    {"DocumentReference", "Notes and documents"},
	"observations": {"Observation", "Observations"},
	"labs":         {"Observation", "Laboratory results"},
	"reports":      {"DiagnosticReport", "Diagnostic reports"},
}

type olderView struct {
	ID, Name, Section, Title string
	Next                     string
	Rows                     []chartview.Row
	Timeline                 []chartview.EncounterRow
	Notes                    []chartview.NoteRow
	Labs                     []chartview.LabRow
	Reports                  []chartview.ReportRow
}

// olderPage shows one older page of a chart section.
func (u *UI) olderPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	pid, section, tok := r.PathValue("id"), r.PathValue("section"), r.URL.Query().Get("page")
	sec, ok := olderSections[section]
	if !ok || !record.ValidID(pid) || tok == "" {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such page of this record.", errors.New("older: bad section or token"))
	}
	c := site.Caller(r, v)
	st, err := u.rec.Read(r.Context(), c, "Patient", pid)
	if chartview.Denied(err) {
		u.renderDenied(w, r, pid)
		return nil
	}
	if err != nil {
		return err
	}
	var p chartview.Obj
	if err := json.Unmarshal(st.JSON, &p); err != nil {
		return err
	}
	expired := site.PageErr(http.StatusBadRequest, "Link expired", "This link does not continue this record's list any more. Open the chart again.", errors.New("older: token refused"))
	page, err := u.rec.Search(r.Context(), c, sec.typ, url.Values{"_page": {tok}}, chartview.SearchOptions())
	if err != nil {
		var re *record.Error
		if errors.As(err, &re) && record.StatusCode(re) == http.StatusBadRequest {
			return expired
		}
		return err
	}
	found, err := chartview.BundleResources(page.Bundle)
	if err != nil {
		return err
	}
	want := ident.PatientRef(pid).String()
	for _, res := range found {
		if chartview.Subject(res) != want {
			return expired
		}
	}
	ov := olderView{ID: pid, Name: chartview.HumanName(p), Section: section, Title: sec.title, Next: chartview.NextPage(page.Bundle)}
	switch section {
	case "encounters":
		ov.Timeline = chartview.EncounterRows(found)
	case "documents":
		ov.Notes = chartview.NoteRows(found)
	case "labs":
		ov.Labs = chartview.LabRows(found)
	case "reports":
		ov.Reports = chartview.ReportRows(found)
	default:
		for _, o := range found {
			ov.Rows = append(ov.Rows, chartview.ObservationRow(o))
		}
	}
	u.site.Render(w, r, http.StatusOK, "chart-older", site.PageData{Title: sec.title, Viewer: v, Nav: "patients", Data: ov})
	return nil
}
