package webui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// The chart: the Patient (one audited read), then one audited search per
// section, each bounded and newest first where the type has a date
// parameter. Every section goes through the record service, so each is
// audited (and, once authorization lands, decided) before it is shown.

// chartSection is one search of the chart.
type chartSection struct {
	typ    string
	params url.Values
}

const loinc = "http://loinc.org"

// LOINC codes of the vital signs drawn in the chart.
const (
	loincHeartRate = "8867-4"
	loincBPPanel   = "85354-9"
	loincSystolic  = "8480-6"
	loincDiastolic = "8462-4"
	loincWeight    = "29463-7"
	loincTemp      = "8310-5"
	loincResp      = "9279-1"
)

// Section sizes (STYLE rule 24): a chart is a summary; the FHIR API
// serves the whole record.
const (
	listCount   = "100" // problems, medications, allergies
	recentCount = "20"  // encounters, documents, observations
	vitalsCount = "300" // points across the three vital-sign series
)

func (u *UI) chartSections(id string) map[string]chartSection {
	pt := "Patient/" + id
	return map[string]chartSection{
		"problems":     {"Condition", url.Values{"patient": {pt}, "_count": {listCount}}},
		"medications":  {"MedicationRequest", url.Values{"patient": {pt}, "_count": {listCount}}},
		"allergies":    {"AllergyIntolerance", url.Values{"patient": {pt}, "_count": {listCount}}},
		"encounters":   {"Encounter", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"documents":    {"DocumentReference", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"observations": {"Observation", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"vitals": {"Observation", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {vitalsCount},
			"code": {loinc + "|" + loincHeartRate + "," + loinc + "|" + loincBPPanel + "," + loinc + "|" + loincWeight}}},
	}
}

func recordSearchOptions() record.SearchOptions { return record.SearchOptions{} }

// denied reports an authorization refusal from the record service: a
// 403 *record.Error (the authorization engine's answer once it lands).
func denied(err error) bool {
	var re *record.Error
	return errors.As(err, &re) && record.StatusCode(re) == http.StatusForbidden
}

// searchFailure maps a failed search to a page.
func searchFailure(err error) error {
	var re *record.Error
	if errors.As(err, &re) && record.StatusCode(re) == http.StatusBadRequest {
		return site.PageErr(http.StatusBadRequest, "Search not understood", "The search could not be run. Check what you typed and try again.", err)
	}
	return err
}

type chartView struct {
	ID           string
	Name         string
	BirthDate    string
	Age          string
	Gender       string
	MRN          string
	Deceased     bool
	Problems     []row
	Medications  []row
	Allergies    []row
	Encounters   []row
	Documents    []noteRow
	Observations []row
	Vitals       *vitalsChart
	Form         writeForms
	// EmergencyUntil is "HH:MM UTC" while the viewer reads this chart
	// under a break-the-glass grant (emergency.go); "" otherwise.
	EmergencyUntil string
}

// row is one line of a chart list.
type row struct {
	When, What, Detail, Status string
}

type noteRow struct {
	When, Title, Author, Text string
}

// writeForms holds the add-note and add-observation forms' values and
// errors when a submission is shown again.
type writeForms struct {
	NoteTitle, NoteText, NoteError string
	ObsKind, ObsValue, ObsValue2   string
	ObsWhen, ObsError              string
	Kinds                          []obsKindOption
}

// loadChart reads the patient and every section.
func (u *UI) loadChart(ctx context.Context, c record.Caller, id string) (*chartView, error) {
	if !record.ValidID(id) {
		return nil, site.PageErr(http.StatusNotFound, "Not found", "This record does not exist.", errors.New("invalid patient id"))
	}
	st, err := u.rec.Read(ctx, c, "Patient", id)
	if err != nil {
		return nil, err
	}
	var p obj
	if err := json.Unmarshal(st.JSON, &p); err != nil {
		return nil, err
	}
	cv := &chartView{ID: id, Name: humanName(p), BirthDate: p.str("birthDate"), Age: age(p.str("birthDate"), u.now()),
		Gender: p.str("gender"), MRN: mrn(p)}
	if b, ok := p["deceasedBoolean"].(bool); ok && b || p.str("deceasedDateTime") != "" {
		cv.Deceased = true
	}
	secs := u.chartSections(id)
	// The sections run concurrently: each read waits until its audit
	// event is durable, and concurrent reads share one group commit of
	// the audit batcher, so a chart costs about one commit, not seven.
	names := []string{"problems", "medications", "allergies", "encounters", "documents", "observations", "vitals"}
	found := make([][]obj, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			s := secs[name]
			page, err := u.rec.Search(ctx, c, s.typ, s.params, recordSearchOptions())
			if err != nil {
				errs[i] = err
				return
			}
			found[i], errs[i] = bundleResources(page.Bundle)
		})
	}
	wg.Wait()
	res := map[string][]obj{}
	for i, name := range names {
		if errs[i] != nil {
			return nil, errs[i]
		}
		res[name] = found[i]
	}
	for _, r := range res["problems"] {
		cv.Problems = append(cv.Problems, row{When: shortDate(firstStr(r, "onsetDateTime", "recordedDate")), What: concept(r.obj("code")),
			Status: concept(r.obj("clinicalStatus"))})
	}
	for _, r := range res["medications"] {
		detail := ""
		if di := r.list("dosageInstruction"); len(di) > 0 {
			detail = di[0].str("text")
		}
		cv.Medications = append(cv.Medications, row{When: shortDate(r.str("authoredOn")), What: concept(r.obj("medicationCodeableConcept")),
			Detail: detail, Status: r.str("status")})
	}
	for _, r := range res["allergies"] {
		detail := ""
		if rx := r.list("reaction"); len(rx) > 0 {
			if m := rx[0].list("manifestation"); len(m) > 0 {
				detail = concept(m[0])
			}
		}
		cv.Allergies = append(cv.Allergies, row{When: shortDate(r.str("recordedDate")), What: concept(r.obj("code")), Detail: detail,
			Status: r.str("criticality")})
	}
	for _, r := range res["encounters"] {
		what := ""
		if ts := r.list("type"); len(ts) > 0 {
			what = concept(ts[0])
		}
		if what == "" {
			what = r.obj("class").str("display")
		}
		cv.Encounters = append(cv.Encounters, row{When: shortDate(r.obj("period").str("start")), What: what, Status: r.str("status")})
	}
	for _, r := range res["documents"] {
		title := r.str("description")
		if title == "" {
			title = concept(r.obj("type"))
		}
		author := ""
		if as := r.list("author"); len(as) > 0 {
			author = as[0].str("display")
		}
		cv.Documents = append(cv.Documents, noteRow{When: shortDate(r.str("date")), Title: title, Author: author, Text: attachmentText(r)})
	}
	for _, r := range res["observations"] {
		cv.Observations = append(cv.Observations, row{When: shortDate(r.str("effectiveDateTime")), What: concept(r.obj("code")),
			Detail: observationValue(r), Status: categoryOf(r)})
	}
	sortRows(cv.Problems)
	sortRows(cv.Medications)
	sortRows(cv.Allergies)
	cv.Vitals = buildVitals(res["vitals"])
	return cv, nil
}

func firstStr(o obj, keys ...string) string {
	for _, k := range keys {
		if s := o.str(k); s != "" {
			return s
		}
	}
	return ""
}

func categoryOf(o obj) string {
	if cs := o.list("category"); len(cs) > 0 {
		return concept(cs[0])
	}
	return ""
}

// sortRows orders rows newest first (dates are ISO, so text order is
// time order).
func sortRows(rs []row) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].When > rs[j].When })
}

// bundleResources returns the resources of a searchset Bundle.
func bundleResources(bundle []byte) ([]obj, error) {
	var b struct {
		Entry []struct {
			Resource obj `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, err
	}
	out := make([]obj, 0, len(b.Entry))
	for _, e := range b.Entry {
		if e.Resource != nil {
			out = append(out, e.Resource)
		}
	}
	return out, nil
}

type deniedView struct {
	ID    string
	Error string
}

// chartPage renders the chart, or the "no treatment relationship" page
// when the record service refuses.
func (u *UI) chartPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	cv, err := u.loadChart(r.Context(), site.Caller(r, v), r.PathValue("id"))
	if denied(err) {
		u.renderDenied(w, r, r.PathValue("id"))
		return nil
	}
	if err != nil {
		return err
	}
	cv.Form.Kinds = kindOptions("")
	if cv.EmergencyUntil, err = u.emergencyUntil(r.Context(), v, cv.ID); err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "chart", site.PageData{Title: "Chart", Viewer: v, Nav: "patients", Data: cv})
	return nil
}

func (u *UI) renderDenied(w http.ResponseWriter, r *http.Request, id string) {
	if !record.ValidID(id) {
		id = ""
	}
	u.site.Render(w, r, http.StatusForbidden, "denied", site.PageData{Title: "No treatment relationship", Viewer: site.ViewerFrom(r.Context()), Nav: "patients", Data: deniedView{ID: id}})
}

// breakGlass is where the break-the-glass form posts: it opens the
// authorization engine's emergency grant on this one patient (time-boxed,
// every access under it audited with purpose ETREAT, a high-priority
// alert and a review the privacy officer must close), then shows the
// chart. The reason text may hold PHI: it is sealed by the engine and
// never logged here.
func (u *UI) breakGlass(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	id := r.PathValue("id")
	if !record.ValidID(id) {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such patient.", errors.New("bad patient id"))
	}
	if u.glass == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Emergency access is unavailable",
			"Emergency access cannot be opened right now. Contact the privacy office or the patient's care team.", errors.New("no break-glass service"))
	}
	reason := r.PostForm.Get("reason")
	if !slices.Contains(authz.ReasonCodes, reason) {
		reason = ""
	}
	body, err := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "reason", "valueCode": reason},
		map[string]any{"name": "text", "valueString": r.PostForm.Get("detail")},
	}})
	if err != nil {
		return err
	}
	req, err := authz.ParseBreakGlass(body)
	if err != nil {
		u.site.Render(w, r, http.StatusBadRequest, "denied", site.PageData{Title: "No treatment relationship", Viewer: v, Nav: "patients",
			Data: deniedView{ID: id, Error: "Choose a reason and explain the emergency in words (at most 1,000 characters)."}})
		return nil
	}
	c := site.Caller(r, v)
	c.Purpose = "ETREAT"
	_, _, err = u.glass.Open(r.Context(), v.P, c.Agent, c.RequestID, id, req)
	switch {
	case err == nil:
		return site.Redirect(w, r, "/patients/"+id)
	case errors.Is(err, storage.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such patient.", err)
	case errors.Is(err, authz.ErrDenied):
		return site.PageErr(http.StatusForbidden, "Emergency access not permitted", "Your account may not use emergency access.", err)
	}
	return site.PageErr(http.StatusServiceUnavailable, "Emergency access is unavailable", "Emergency access could not be opened. Try again, or contact the privacy office.", err)
}

// noteTitle returns a default title.
func noteTitle(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "Progress note"
	}
	return s
}
