package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// "I don't recognise this access": a patient reports one event of their
// access list; the privacy officer sees the open reports at
// /privacy/reports and closes them with a note. The use-case is
// privacy.Reports: the comment and the note may hold PHI, so it seals
// them with the patient's data key (record service) before they are
// stored (never logged), and each change commits with its audit event in one
// transaction (ADR 0024); a failure to audit fails the request. These
// pages parse the forms, check their sizes, call it and render.

// Reports is the access reports' use-case (privacy.Reports): the
// report, the list of open ones and their closing, each audited in its
// transaction.
type Reports interface {
	Create(ctx context.Context, by privacy.Actor, n privacy.NewReport) (storage.AccessReport, error)
	Open(ctx context.Context, by privacy.Actor, limit int) ([]privacy.Listed, error)
	Report(ctx context.Context, id string) (storage.AccessReport, error)
	Close(ctx context.Context, by privacy.Actor, rep storage.AccessReport, note string) error
}

// maxReportText bounds a comment or a closing note (characters).
const maxReportText = 2000

// maxOpenReports is how many open reports the privacy page lists.
const maxOpenReports = 200

type reportView struct {
	ID      string
	Row     accessRow
	Comment string
	Error   string
	Sent    bool
}

func (u *UI) reportsReady() error {
	if u.reports == nil || u.access == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable",
			"Reports cannot be sent from this server right now. Contact the privacy office.", errors.New("no report service or access log"))
	}
	return nil
}

// ownEvent reads the event at leaf id if it touched the viewer's record;
// any other answers 404, as the FHIR API does.
func (u *UI) ownEvent(r *http.Request, v *site.Viewer) (accessRow, int64, error) {
	pid, _ := ownPatient(v)
	leaf, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || leaf < 0 {
		return accessRow{}, 0, site.PageErr(http.StatusNotFound, "Not found", "There is no such entry in your access list.", errors.New("bad leaf"))
	}
	c := portalCaller(r, v)
	e, err := u.access.Get(r.Context(), index.Caller{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID}, leaf)
	// The patient's own view of the event (ADR 0018).
	ev, mine := e.Event.PatientView(ident.PatientRef(pid).String())
	if errors.Is(err, index.ErrNotFound) || err == nil && !mine {
		return accessRow{}, 0, site.PageErr(http.StatusNotFound, "Not found", "There is no such entry in your access list.", errors.New("leaf not in the patient's trail"))
	}
	if errors.Is(err, audit.ErrUnavailable) {
		return accessRow{}, 0, &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
			Msg: "The access log cannot be read right now. Try again in a moment.", RetryAfter: time.Second, Err: err}
	}
	if err != nil {
		return accessRow{}, 0, err
	}
	row := accessRow{ID: strconv.FormatInt(leaf, 10), When: ev.Time, What: whatText(ev), Why: purposeText(ev.Purpose), Role: roleWords(ev.Agent.Role)}
	row.Who = serviceText(ev.Agent.Client)
	if ev.Agent.User != "" {
		if usr, err := u.users.ByID(r.Context(), ev.Agent.User); err == nil {
			row.Who = usr.DisplayName
			if row.Who == "" {
				row.Who = usr.Username
			}
		}
	}
	return row, leaf, nil
}

func (u *UI) reportForm(w http.ResponseWriter, r *http.Request) error {
	if err := u.reportsReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	row, _, err := u.ownEvent(r, v)
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "portal-report", site.PageData{Title: "Report an access", Viewer: v, Nav: "portal",
		Data: reportView{ID: row.ID, Row: row, Sent: r.URL.Query().Get("sent") == "1"}})
	return nil
}

func (u *UI) reportSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := u.reportsReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	row, leaf, err := u.ownEvent(r, v)
	if err != nil {
		return err
	}
	pid, _ := ownPatient(v)
	owner := ident.PatientOwner(pid)
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	if utf8.RuneCountInString(comment) > maxReportText || !utf8.ValidString(comment) {
		u.site.Render(w, r, http.StatusBadRequest, "portal-report", site.PageData{Title: "Report an access", Viewer: v, Nav: "portal",
			Data: reportView{ID: row.ID, Row: row, Comment: comment, Error: "The comment is too long: at most 2,000 characters."}})
		return nil
	}
	c := portalCaller(r, v)
	_, err = u.reports.Create(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusSeeOther},
		privacy.NewReport{Patient: owner, Leaf: leaf, Reporter: v.P.ID, Comment: comment})
	if errors.Is(err, audit.ErrUnavailable) {
		// One transaction: a report that cannot be audited is not stored.
		return auditUnavailable(err)
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/portal/access/"+row.ID+"/report?sent=1")
}

func auditUnavailable(err error) error {
	return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
		Msg: "Nothing was saved, because it could not be recorded in the audit log. Try again in a moment.", RetryAfter: time.Second, Err: err}
}

// privacy is signedIn for the privacy officer's pages: a workforce
// session with its second factor and the privacy-officer role.
func (u *UI) privacy(h site.HandlerFunc) site.HandlerFunc {
	return u.site.SignedIn(func(w http.ResponseWriter, r *http.Request) error {
		if err := privacyGate(site.ViewerFrom(r.Context())); err != nil {
			return err
		}
		return h(w, r)
	})
}

func (u *UI) privacyForm(h site.HandlerFunc) site.HandlerFunc {
	return u.site.Form(func(w http.ResponseWriter, r *http.Request) error {
		if err := privacyGate(site.ViewerFrom(r.Context())); err != nil {
			return err
		}
		return h(w, r)
	})
}

func privacyGate(v *site.Viewer) error {
	if !v.P.MFA || !v.PrivacyOfficer() {
		return site.PageErr(http.StatusForbidden, "Not available to your role",
			"Access reports are for the privacy office only.", errors.New("non-privacy-officer at a privacy page"))
	}
	return nil
}

type reportRow struct {
	ID, Patient, Leaf, Reporter string
	PatientName, ReporterName   string // from the record and the directory; "" when unknown
	When                        time.Time
	Comment                     string
}

type reportsView struct {
	Rows   []reportRow
	Closed bool
}

func (u *UI) reportsPage(w http.ResponseWriter, r *http.Request) error {
	if u.reports == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable", "Access reports cannot be read on this server.", errors.New("no report service"))
	}
	v := site.ViewerFrom(r.Context())
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	// The service records the read before it opens the comments.
	reps, err := u.reports.Open(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}, maxOpenReports)
	if errors.Is(err, audit.ErrUnavailable) {
		return auditUnavailable(err)
	}
	if err != nil {
		return err
	}
	view := reportsView{Closed: r.URL.Query().Get("closed") == "1"}
	for _, rep := range reps {
		row := reportRow{ID: rep.ID, Patient: rep.Patient, Leaf: strconv.FormatInt(rep.Leaf, 10), When: rep.Created, Reporter: rep.Reporter, Comment: rep.Text}
		if rep.Unreadable {
			row.Comment = "(the comment cannot be opened: the patient's record may have been erased)"
		}
		if usr, err := u.users.ByID(r.Context(), rep.Reporter); err == nil {
			row.ReporterName = usr.DisplayName
			if row.ReporterName == "" {
				row.ReporterName = usr.Username
			}
		}
		view.Rows = append(view.Rows, row)
	}
	// The patients' names, read with the officer's authorization in one
	// audited search (demographics only).
	names := u.patientNames(r, c, view.Rows)
	for i := range view.Rows {
		view.Rows[i].PatientName = names[view.Rows[i].Patient]
	}
	u.site.Render(w, r, http.StatusOK, "privacy-reports", site.PageData{Title: "Access reports", Viewer: v, Nav: "privacy", Data: view})
	return nil
}

// maxNamed is how many patients one page names (one search, its _id
// list bounded as any search's).
const maxNamed = 50

// patientNames reads the names of the rows' patients ("Patient/<id>" →
// name) in one audited Patient search; a refusal or a failure leaves
// the names out (the page shows the record ids) and is logged by id only.
func (u *UI) patientNames(r *http.Request, c record.Caller, rows []reportRow) map[string]string {
	var ids []string
	seen := map[string]bool{}
	for _, row := range rows {
		id, ok := strings.CutPrefix(row.Patient, ident.PatientPrefix)
		if ok && record.ValidID(id) && !seen[id] && len(ids) < maxNamed {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out
	}
	page, err := u.rec.Search(r.Context(), c, "Patient", url.Values{"_id": {strings.Join(ids, ",")}, "_count": {strconv.Itoa(maxNamed)}}, chartview.SearchOptions())
	if err != nil {
		u.log.WarnContext(r.Context(), "privacy reports: patient names not shown", slog.String("request_id", c.RequestID), slog.String("error", err.Error()))
		return out
	}
	ps, _, err := lookupPatients(page.Bundle)
	if err != nil {
		return out
	}
	for _, p := range ps {
		out[p.Ref] = p.Name
	}
	return out
}

func (u *UI) reportClose(w http.ResponseWriter, r *http.Request) error {
	if u.reports == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable", "Access reports cannot be closed on this server.", errors.New("no report service"))
	}
	v := site.ViewerFrom(r.Context())
	id := r.PathValue("rid")
	rep, err := u.reports.Report(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such report.", err)
	}
	if err != nil {
		return err
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if utf8.RuneCountInString(note) > maxReportText {
		return site.PageErr(http.StatusBadRequest, "Note too long", "The note may hold at most 2,000 characters. Go back and shorten it.", errors.New("close note too long"))
	}
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	err = u.reports.Close(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusSeeOther}, rep, note)
	if errors.Is(err, audit.ErrUnavailable) {
		return auditUnavailable(err)
	}
	if errors.Is(err, storage.ErrConflict) {
		return site.Redirect(w, r, "/privacy/reports?closed=1") // closed meanwhile: nothing left to do
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/privacy/reports?closed=1")
}
