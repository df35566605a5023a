package portal

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/export"
	"github.com/phivault/phivault/internal/webui/site"
)

// The right of access (HIPAA §164.524) in forms a person can use: a
// printable summary of the record (the chart's sections, with results
// explained; the page's print stylesheet leaves the site's chrome out)
// and the same summary as a PDF, beside the FHIR JSON download. Both
// are read through chartview.Load with the patient's own guard, so
// every section read is decided and audited; the PDF is recorded as an
// export too (privacy.Trail) before it is written.

type summaryView struct {
	*chartview.Chart
	Printed time.Time
}

func (u *UI) summaryPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	cv, err := u.loadOwn(r, v)
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "portal-summary", site.PageData{Title: "My health record summary", Viewer: v, Nav: "portal",
		Data: summaryView{Chart: cv, Printed: u.now()}})
	return nil
}

// loadOwn reads the viewer's own chart.
func (u *UI) loadOwn(r *http.Request, v *site.Viewer) (*chartview.Chart, error) {
	id, _ := ownPatient(v)
	cv, err := chartview.Load(r.Context(), u.rec, u.now, portalCaller(r, v), id)
	if chartview.Denied(err) {
		return nil, site.PageErr(http.StatusForbidden, "Your record cannot be shown",
			"Your record could not be shown to you. Contact the privacy office.", err)
	}
	return cv, err
}

// exportUnavailable answers when no export can be recorded.
func (u *UI) exportReady() error {
	if u.trail == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Not available", "Files cannot be made on this server right now. Try again later.", errors.New("no trail"))
	}
	return nil
}

// recordExport records the viewer's export e (fail closed).
func (u *UI) recordExport(r *http.Request, v *site.Viewer, e privacy.Export) error {
	c := portalCaller(r, v)
	err := u.trail.Export(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}, e)
	if errors.Is(err, audit.ErrUnavailable) {
		return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
			Msg: "The file could not be recorded in the access log, so it was not made. Try again in a moment.", RetryAfter: time.Second, Err: err}
	}
	return err
}

// sendFile writes a finished file as an attachment.
func sendFile(w http.ResponseWriter, ctype, name string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (u *UI) recordPDF(w http.ResponseWriter, r *http.Request) error {
	if err := u.exportReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	cv, err := u.loadOwn(r, v)
	if err != nil {
		return err
	}
	pid, _ := ownPatient(v)
	if err := u.recordExport(r, v, privacy.Export{Format: "pdf", Query: "Patient/$summary", Patient: ident.PatientRef(pid).String(),
		Extra: []string{ident.PatientRef(pid).String()}}); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := export.WritePDF(&buf, summaryDocument(cv, u.now())); err != nil {
		return err
	}
	sendFile(w, "application/pdf", "my-health-record.pdf", buf.Bytes())
	return nil
}

// summaryDocument is the record summary as a PDF document.
func summaryDocument(cv *chartview.Chart, now time.Time) export.Document {
	born := cv.BirthDate
	if cv.Age != "" {
		born += " (" + cv.Age + " years)"
	}
	d := export.Document{Title: "Health record summary: " + cv.Name, Created: now,
		Subtitle: []string{"Born " + born + "; gender " + cv.Gender + mrnSuffix(cv.MRN) + ".",
			"Made on " + now.Format("2006-01-02 15:04 MST") + " at your request. It summarises your record; \"Download my data\" gives all of it (FHIR JSON).",
			"Keep it safe: anyone who has it can read your health information."}}
	rows := func(title string, rs []chartview.Row, cols ...string) {
		t := &export.Table{Columns: cols, Widths: []float64{1, 3, 2, 1.2}}
		for _, x := range rs {
			t.Rows = append(t.Rows, []string{x.When, x.What, x.Detail, x.Status})
		}
		d.Sections = append(d.Sections, export.Section{Heading: title, Table: t})
	}
	rows("Health problems", cv.Problems, "Since", "Problem", "", "Status")
	rows("Medications", cv.Medications, "Prescribed", "Medication", "How to take it", "Status")
	rows("Allergies", cv.Allergies, "Recorded", "Allergy", "Reaction", "Severity")
	rows("Recent visits", cv.Encounters, "Date", "Visit", "", "Status")
	res := &export.Table{Columns: []string{"Date", "What", "Result", "What it means"}, Widths: []float64{1, 2.4, 1.6, 4}}
	for _, x := range cv.Observations {
		res.Rows = append(res.Rows, []string{x.When, x.What, x.Detail, x.Explain.String()})
	}
	d.Sections = append(d.Sections, export.Section{Heading: "Recent results and measurements",
		Text: []string{"A result outside the usual range is not always a problem: ask your care team what it means for you."}, Table: res})
	notes := export.Section{Heading: "Notes and documents"}
	for _, n := range cv.Documents {
		notes.Text = append(notes.Text, n.When+" - "+n.Title+authorSuffix(n.Author), n.Text)
	}
	if len(cv.Documents) == 0 {
		notes.Text = []string{"None recorded."}
	}
	d.Sections = append(d.Sections, notes)
	return d
}

func mrnSuffix(mrn string) string {
	if mrn == "" {
		return ""
	}
	return "; record number " + mrn
}

func authorSuffix(a string) string {
	if a == "" {
		return ""
	}
	return " (" + a + ")"
}
