// Package chartview reads a patient's chart for display: the Patient and
// one bounded search per section through the record service (each read
// decided by the caller's guard and audited there), shaped into rows
// and the vital signs drawing. The staff chart and the patient portal
// both show it; it holds no handler.
package chartview

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/site"
)

// The chart: the Patient (one audited read), then one audited search per
// section, each bounded and newest first where the type has a date
// parameter. Every section goes through the record service, so each is
// audited and decided (the signed-in user's guard) before it is shown.

// chartSection is one search of the chart.
type chartSection struct {
	typ    string
	params url.Values
}

const LOINC = "http://loinc.org"

// LOINC codes of the vital signs drawn in the chart.
const (
	LOINCHeartRate = "8867-4"
	LOINCBPPanel   = "85354-9"
	LOINCSystolic  = "8480-6"
	LOINCDiastolic = "8462-4"
	LOINCWeight    = "29463-7"
	LOINCTemp      = "8310-5"
	LOINCResp      = "9279-1"
)

// Section sizes (STYLE rule 24): a chart is a summary; the FHIR API
// serves the whole record.
const (
	listCount   = "100" // problems, medications, allergies
	recentCount = "20"  // encounters, documents, observations
	vitalsCount = "300" // points across the three vital-sign series
	labCount    = "100" // laboratory results: the table and the reports' results
)

func sections(id string) map[string]chartSection {
	pt := ident.PatientRef(id).String()
	return map[string]chartSection{
		"problems":      {"Condition", url.Values{"patient": {pt}, "_count": {listCount}}},
		"medications":   {"MedicationRequest", url.Values{"patient": {pt}, "_count": {listCount}}},
		"allergies":     {"AllergyIntolerance", url.Values{"patient": {pt}, "_count": {listCount}}},
		"encounters":    {"Encounter", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"documents":     {"DocumentReference", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"observations":  {"Observation", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"labs":          {"Observation", url.Values{"patient": {pt}, "category": {"laboratory"}, "_sort": {"-date"}, "_count": {labCount}}},
		"immunizations": {"Immunization", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {listCount}}},
		"procedures":    {"Procedure", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {listCount}}},
		"reports":       {"DiagnosticReport", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {recentCount}}},
		"careteams":     {"CareTeam", url.Values{"patient": {pt}, "status": {"active"}, "_count": {listCount}}},
		"vitals": {"Observation", url.Values{"patient": {pt}, "_sort": {"-date"}, "_count": {vitalsCount},
			"code": {LOINC + "|" + LOINCHeartRate + "," + LOINC + "|" + LOINCBPPanel + "," + LOINC + "|" + LOINCWeight}}},
	}
}

func SearchOptions() record.SearchOptions { return record.SearchOptions{} }

// Denied reports an authorization refusal from the record service: a
// 403 *record.Error (the authorization engine's answer once it lands).
func Denied(err error) bool {
	var re *record.Error
	return errors.As(err, &re) && record.StatusCode(re) == http.StatusForbidden
}

type Chart struct {
	// CareTeams are the patient's active care teams: who treats them,
	// and since when (the portal shows them, so an assignment by the
	// front desk is visible with the clinician's name).
	CareTeams    []CareTeamRow
	ID           string
	Name         string
	BirthDate    string
	Age          string
	Gender       string
	MRN          string
	Deceased     bool
	Problems     []Row
	Medications  []Row
	Allergies    []Row
	Encounters   []Row
	Documents    []NoteRow
	Observations []Row
	// The staff chart's richer sections (the portal shows the rows
	// above): the problem list with ids for resolving, medications with
	// dose and instructions (in Medications), immunizations, procedures,
	// encounters as a timeline, laboratory results, diagnostic reports.
	ProblemList   []ProblemRow
	Immunizations []Row
	Procedures    []Row
	Timeline      []EncounterRow
	Labs          []LabRow
	Reports       []ReportRow
	Vitals        *vitalsChart
	// Older holds, per paged section ("encounters", "documents",
	// "observations", "labs", "reports"), the record's sealed paging
	// token of the page after the one shown; absent when it was the
	// last.
	Older map[string]string
	Form  WriteForms
	// EmergencyUntil is "HH:MM UTC" while the viewer reads this chart
	// under a break-the-glass grant (emergency.go); "" otherwise.
	EmergencyUntil string
	// Corrections are the patient's correction requests (HIPAA
	// §164.526), shown to the care team on the chart; filled by the
	// chart package, not by Load.
	Corrections []Correction
}

// Correction is one of the patient's correction requests as the care
// team reads it.
type Correction struct {
	Part, Wrong, Should, State, Reason string
	Created, Decided                   time.Time
}

// Row is one line of a chart list.
type Row struct {
	When, What, Detail, Status string
	// Explain is a result's usual range and flag in words (results.go);
	// zero for other rows.
	Explain Explained
}

type NoteRow struct {
	When, Title, Author, Text string
	// ID is the DocumentReference's id; Version its version (for the
	// sign form's If-Match).
	ID      string
	Version int64
	// Draft is a note not yet signed (docStatus preliminary); Signed
	// one whose docStatus is final or amended, SignedBy its
	// authenticator. Void is a note entered in error.
	Draft, Signed, Void bool
	SignedBy            string
	// AuthorRef is the author's "Practitioner/<id>", when recorded.
	AuthorRef string
	// Addenda are the notes that append this one (relatesTo appends),
	// oldest first; AppendsTo is set on an addendum whose note is not
	// in the list.
	Addenda   []NoteRow
	AppendsTo string
	// Attachments are its PDFs and images.
	Attachments []Attachment
}

// WriteForms holds the add-note and add-observation forms' values and
// errors when a submission is shown again.
type WriteForms struct {
	NoteTitle, NoteText, NoteError string
	ObsKind, ObsValue, ObsValue2   string
	ObsWhen, ObsError              string
	Kinds                          []ObsKindOption
}

// Load reads patient id and every section of its chart as c, through
// the record service (each read decided and audited there); now dates
// the patient's age.
func Load(ctx context.Context, rec *record.Service, now func() time.Time, c record.Caller, id string) (*Chart, error) {
	if !record.ValidID(id) {
		return nil, site.PageErr(http.StatusNotFound, "Not found", "This record does not exist.", errors.New("invalid patient id"))
	}
	st, err := rec.Read(ctx, c, "Patient", id)
	if err != nil {
		return nil, err
	}
	var p Obj
	if err := json.Unmarshal(st.JSON, &p); err != nil {
		return nil, err
	}
	cv := &Chart{ID: id, Name: HumanName(p), BirthDate: p.Str("birthDate"), Age: age(p.Str("birthDate"), now()),
		Gender: p.Str("gender"), MRN: MRN(p)}
	if b, ok := p["deceasedBoolean"].(bool); ok && b || p.Str("deceasedDateTime") != "" {
		cv.Deceased = true
	}
	secs := sections(id)
	// The sections run concurrently: each read waits until its audit
	// event is durable, and concurrent reads share one group commit of
	// the audit batcher, so a chart costs about one commit, not seven.
	names := []string{"problems", "medications", "allergies", "encounters", "documents", "observations", "vitals", "labs", "immunizations", "procedures", "reports", "careteams"}
	found := make([][]Obj, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	var mu sync.Mutex
	older := map[string]string{}
	for i, name := range names {
		wg.Go(func() {
			s := secs[name]
			page, err := rec.Search(ctx, c, s.typ, s.params, SearchOptions())
			if err != nil {
				errs[i] = err
				return
			}
			found[i], errs[i] = BundleResources(page.Bundle)
			if tok := NextPage(page.Bundle); tok != "" {
				mu.Lock()
				older[name] = tok
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cv.Older = older
	res := map[string][]Obj{}
	for i, name := range names {
		if errs[i] != nil {
			return nil, errs[i]
		}
		res[name] = found[i]
	}
	for _, r := range res["careteams"] {
		cv.CareTeams = append(cv.CareTeams, careTeamRow(r))
	}
	for _, r := range res["problems"] {
		cv.Problems = append(cv.Problems, Row{When: shortDate(firstStr(r, "onsetDateTime", "recordedDate")), What: concept(r.Obj("code")),
			Status: concept(r.Obj("clinicalStatus"))})
	}
	for _, r := range res["problems"] {
		cv.ProblemList = append(cv.ProblemList, problemRow(r))
	}
	sort.SliceStable(cv.ProblemList, func(i, j int) bool {
		a, b := cv.ProblemList[i], cv.ProblemList[j]
		if a.Active != b.Active {
			return a.Active
		}
		return a.When > b.When
	})
	for _, r := range res["medications"] {
		cv.Medications = append(cv.Medications, medicationRow(r))
	}
	for _, r := range res["immunizations"] {
		cv.Immunizations = append(cv.Immunizations, immunizationRow(r))
	}
	for _, r := range res["procedures"] {
		cv.Procedures = append(cv.Procedures, procedureRow(r))
	}
	cv.Labs = LabRows(res["labs"])
	for _, r := range res["reports"] {
		cv.Reports = append(cv.Reports, reportRow(r, cv.Labs))
	}
	for _, r := range res["allergies"] {
		detail := ""
		if rx := r.List("reaction"); len(rx) > 0 {
			if m := rx[0].List("manifestation"); len(m) > 0 {
				detail = concept(m[0])
			}
		}
		cv.Allergies = append(cv.Allergies, Row{When: shortDate(r.Str("recordedDate")), What: concept(r.Obj("code")), Detail: detail,
			Status: r.Str("criticality")})
	}
	for _, r := range res["encounters"] {
		what := ""
		if ts := r.List("type"); len(ts) > 0 {
			what = concept(ts[0])
		}
		if what == "" {
			what = r.Obj("class").Str("display")
		}
		cv.Encounters = append(cv.Encounters, Row{When: shortDate(r.Obj("period").Str("start")), What: what, Status: r.Str("status")})
		cv.Timeline = append(cv.Timeline, encounterRow(r))
	}
	cv.Documents = NoteRows(res["documents"])
	for _, r := range res["observations"] {
		cv.Observations = append(cv.Observations, ObservationRow(r))
	}
	sortRows(cv.Problems)
	sortRows(cv.Medications)
	sortRows(cv.Allergies)
	cv.Vitals = buildVitals(res["vitals"])
	return cv, nil
}

// ObservationRow is an Observation as a chart row.
func ObservationRow(r Obj) Row {
	return Row{When: shortDate(r.Str("effectiveDateTime")), What: concept(r.Obj("code")), Detail: observationValue(r), Status: categoryOf(r), Explain: ExplainResult(r)}
}

// EncounterRows shapes Encounters into the timeline's rows.
func EncounterRows(rs []Obj) []EncounterRow {
	out := make([]EncounterRow, 0, len(rs))
	for _, r := range rs {
		out = append(out, encounterRow(r))
	}
	return out
}

// ReportRows shapes DiagnosticReports; their results are counted as
// not shown (Missing).
func ReportRows(rs []Obj) []ReportRow {
	out := make([]ReportRow, 0, len(rs))
	for _, r := range rs {
		out = append(out, reportRow(r, nil))
	}
	return out
}

// Subject is the patient reference of a chart resource (subject, else
// patient).
func Subject(r Obj) string {
	if s := r.Obj("subject").Str("reference"); s != "" {
		return s
	}
	return r.Obj("patient").Str("reference")
}

func firstStr(o Obj, keys ...string) string {
	for _, k := range keys {
		if s := o.Str(k); s != "" {
			return s
		}
	}
	return ""
}

func categoryOf(o Obj) string {
	if cs := o.List("category"); len(cs) > 0 {
		return concept(cs[0])
	}
	return ""
}

// sortRows orders rows newest first (dates are ISO, so text order is
// time order).
func sortRows(rs []Row) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].When > rs[j].When })
}

// NextPage returns the _page token of a searchset Bundle's next link
// (sealed by the record service: opaque, no search value in clear), or
// "".
func NextPage(bundle []byte) string {
	var b struct {
		Link []struct{ Relation, URL string } `json:"link"`
	}
	if json.Unmarshal(bundle, &b) != nil {
		return ""
	}
	for _, l := range b.Link {
		if l.Relation != "next" {
			continue
		}
		if u, err := url.Parse(l.URL); err == nil {
			return u.Query().Get("_page")
		}
	}
	return ""
}

// BundleResources returns the resources of a searchset Bundle.
func BundleResources(bundle []byte) ([]Obj, error) {
	var b struct {
		Entry []struct {
			Resource Obj `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, err
	}
	out := make([]Obj, 0, len(b.Entry))
	for _, e := range b.Entry {
		if e.Resource != nil {
			out = append(out, e.Resource)
		}
	}
	return out, nil
}

type ObsKindOption struct {
	Value, Label string
	Selected     bool
}

// CareTeamRow is one active care team: its name, its members as the
// team names them (display), and since when.
type CareTeamRow struct {
	Name    string
	Members []string
	Since   string
}

func careTeamRow(r Obj) CareTeamRow {
	row := CareTeamRow{Name: r.Str("name"), Since: shortDate(r.Obj("period").Str("start"))}
	if row.Name == "" {
		row.Name = "Care team"
	}
	for _, p := range r.List("participant") {
		m := p.Obj("member")
		name := m.Str("display")
		if name == "" {
			name = "a member of staff"
		}
		if roles := p.List("role"); len(roles) > 0 {
			if role := concept(roles[0]); role != "" {
				name += " (" + role + ")"
			}
		}
		row.Members = append(row.Members, name)
	}
	return row
}
