package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/export"
	"github.com/phivault/phivault/internal/webui/site"
)

// Export of an audit search (CSV or PDF), for the privacy officer and
// the auditor. The form is the search's, POSTed; the events are read
// through index.Reader (which records the search) and the export itself
// is recorded (privacy.Trail, ActionExport, with every exported
// position) before a byte of the file is written: a failure to record
// it answers 503 and no file.

// Exporter records an export before the file is written
// (privacy.Trail); an error wrapping audit.ErrUnavailable means it
// could not be recorded.
type Exporter interface {
	Export(ctx context.Context, by privacy.Actor, e privacy.Export) error
}

// maxExport is the most events one export holds (index.MaxLimit: one
// audited search).
const maxExport = index.MaxLimit

func (u *UI) adminAuditExport(w http.ResponseWriter, r *http.Request) error {
	if u.console.AuditLog == nil || u.console.Exports == nil {
		return unavailable("Audit log export")
	}
	format := r.PostForm.Get("format")
	if format != "csv" && format != "pdf" {
		return site.PageErr(http.StatusBadRequest, "Choose a format", "Export as CSV or as PDF.", errors.New("console: bad export format"))
	}
	form, err := parseAuditForm(r)
	if err != nil {
		return err
	}
	filter, msg := u.auditFilter(r, form)
	if msg != "" {
		return site.PageErr(http.StatusBadRequest, "Check the search", msg+" Go back and correct the search.", errors.New("console: bad export search"))
	}
	filter.Limit = maxExport
	c := u.auditCaller(r)
	es, err := u.console.AuditLog.Search(r.Context(), c, filter)
	if err != nil {
		return u.consoleErr(err)
	}
	leaves := make([]int64, len(es))
	for i, e := range es {
		leaves[i] = e.Index
	}
	by := privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}
	if err := u.console.Exports.Export(r.Context(), by, privacy.Export{Format: format, Query: exportQuery(form), Patient: filter.Patient, Leaves: leaves}); err != nil {
		if errors.Is(err, audit.ErrUnavailable) {
			return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
				Msg: "The export could not be recorded in the audit log, so no file was made. Try again in a moment.", RetryAfter: time.Second, Err: err}
		}
		return err
	}
	rows := u.auditRows(r, es)
	t := export.Table{Columns: []string{"Position", "Time (UTC)", "What was done", "Action code", "Outcome", "Who", "Role", "Client", "Purpose", "Patients"},
		Widths: []float64{1, 2, 3.2, 1.6, 1.2, 2.6, 1.4, 1, 1, 2.4}}
	for _, x := range rows {
		t.Rows = append(t.Rows, []string{strconv.FormatInt(x.Index, 10), x.Time.UTC().Format("2006-01-02 15:04:05"), x.Words, x.Action, x.Outcome,
			x.User, x.Role, x.Client, x.Purpose, x.Patients})
	}
	v := site.ViewerFrom(r.Context())
	now := u.now()
	var buf bytes.Buffer
	name := "audit-events-" + now.UTC().Format("20060102-150405")
	switch format {
	case "csv":
		err = export.WriteCSV(&buf, t)
	default:
		d := export.Document{Title: "Audit log export", Created: now, Landscape: true,
			Subtitle: []string{"Exported by " + v.DisplayName + " on " + now.UTC().Format("2006-01-02 15:04 UTC") + "; " + strconv.Itoa(len(rows)) + " events, newest first.",
				"Search: " + searchWords(form) + ".", "Each event can be checked in the audit log at its position (/admin/audit/<position>, or /fhir/AuditEvent/<position>/$proof)."},
			Sections: []export.Section{{Table: &t}}}
		err = export.WritePDF(&buf, d)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/pdf")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`.`+format+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// exportQuery names the search's fields, never their values, as the
// index records a search ("AuditEvent?patient&action").
func exportQuery(f auditForm) string {
	var names []string
	for _, x := range []struct{ name, val string }{{"patient", f.Patient}, {"agent", f.Agent}, {"subtype", f.Action}, {"outcome", f.Outcome}} {
		if x.val != "" {
			names = append(names, x.name)
		}
	}
	if f.From != "" || f.To != "" {
		names = append(names, "date")
	}
	if len(names) == 0 {
		return "AuditEvent"
	}
	return "AuditEvent?" + strings.Join(names, "&")
}

// searchWords says the search in the PDF's heading.
func searchWords(f auditForm) string {
	var parts []string
	if f.Patient != "" {
		parts = append(parts, "patient "+f.Patient)
	}
	if f.Agent != "" {
		parts = append(parts, "staff member or service "+f.Agent)
	}
	if f.Action != "" {
		parts = append(parts, "action "+f.Action)
	}
	if f.Outcome != "" {
		parts = append(parts, "outcome "+f.Outcome)
	}
	if f.From != "" {
		parts = append(parts, "from "+f.From)
	}
	if f.To != "" {
		parts = append(parts, "to "+f.To)
	}
	if f.Before != 0 {
		parts = append(parts, "before position "+strconv.FormatInt(f.Before, 10))
	}
	if len(parts) == 0 {
		return "every event"
	}
	return strings.Join(parts, ", ")
}
