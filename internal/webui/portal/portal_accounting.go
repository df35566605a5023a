package portal

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/webui/export"
	"github.com/phivault/phivault/internal/webui/site"
)

// The accounting of disclosures (HIPAA §164.528) as a file: "who
// accessed my record", with the page's filters (dates, action, person,
// own views), as CSV or PDF. The entries are read in one audited search
// of the log (up to index.MaxLimit), said in words as on the page, and
// the export is recorded (privacy.Trail, with every position) before
// the file is written. Each row keeps its log position, so any entry of
// the file can be verified on the page or with its proof.

func (u *UI) accessExport(w http.ResponseWriter, r *http.Request) error {
	if u.access == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Not available", "The access log cannot be searched on this server.", errors.New("no access log"))
	}
	if err := u.exportReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	id, _ := ownPatient(v)
	qv := r.URL.Query()
	format := qv.Get("format")
	if format != "csv" && format != "pdf" {
		return site.PageErr(http.StatusBadRequest, "Choose a format", "Download the list as CSV or as PDF.", errors.New("bad format"))
	}
	qv.Del("format")
	q, err := parseAccessQuery(qv)
	if err != nil {
		return site.PageErr(http.StatusBadRequest, "Check the filter", err.Error()+".", err)
	}
	rows, _, err := u.accessRowsLimit(r, v, id, q, index.MaxLimit)
	if err != nil {
		return err
	}
	leaves := make([]int64, 0, len(rows))
	for _, x := range rows {
		n, _ := strconv.ParseInt(x.ID, 10, 64)
		leaves = append(leaves, n)
	}
	pref := ident.PatientRef(id).String()
	if err := u.recordExport(r, v, privacy.Export{Format: format, Query: "AuditEvent?patient", Patient: pref, Leaves: leaves}); err != nil {
		return err
	}
	// The mark of the page: the accesses a confirmed alert covers.
	reviewKnown := u.markUnderReview(r, id, rows)
	t := export.Table{Columns: []string{"When", "Who", "Role", "Organisation", "What", "Why", "Outcome", "Review", "Log position"},
		Widths: []float64{1.5, 1.7, 1.1, 1.5, 2.4, 1.1, 0.8, 1.2, 0.8}}
	for _, x := range rows {
		t.Rows = append(t.Rows, []string{x.When.Local().Format("2006-01-02 15:04 MST"), x.Who, x.Role, x.Org, x.What, x.Why, x.Outcome,
			reviewText(x.UnderReview, reviewKnown), x.ID})
	}
	now := u.now()
	var buf bytes.Buffer
	if format == "csv" {
		err = export.WriteCSV(&buf, t)
	} else {
		scope := "Accesses by others"
		if q.own {
			scope = "Every access, yours included"
		}
		d := export.Document{Title: "Who accessed my record", Created: now, Landscape: true,
			Subtitle: []string{"Accounting of the accesses to your health record, made on " + now.Format("2006-01-02 15:04 MST") + " at your request.",
				scope + accessFilterWords(q) + "; " + strconv.Itoa(len(rows)) + " entries, newest first (at most " + strconv.Itoa(index.MaxLimit) + ": narrow the dates for more).",
				"Each entry has a position in the tamper-evident access log: on the \"Who accessed my record\" page, Verify checks it."},
			Sections: []export.Section{{Table: &t}}}
		err = export.WritePDF(&buf, d)
	}
	if err != nil {
		return err
	}
	if format == "csv" {
		sendFile(w, "text/csv; charset=utf-8", "who-accessed-my-record.csv", buf.Bytes())
	} else {
		sendFile(w, "application/pdf", "who-accessed-my-record.pdf", buf.Bytes())
	}
	return nil
}

// reviewText is an entry's review column: "under review" when a
// confirmed alert covers it, "" otherwise, "not known" when the
// monitoring service could not answer.
func reviewText(under, known bool) string {
	switch {
	case !known:
		return "not known"
	case under:
		return "under review"
	}
	return ""
}

func accessFilterWords(q accessQuery) string {
	s := ""
	if q.fromS != "" {
		s += " from " + q.fromS
	}
	if q.toS != "" {
		s += " to " + q.toS
	}
	if q.crude != "" {
		for _, o := range crudeWords {
			if o.Value == q.crude {
				s += ", " + o.Label
			}
		}
	}
	if q.agent != "" {
		s += ", one person"
	}
	return s
}
