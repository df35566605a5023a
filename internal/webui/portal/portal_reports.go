package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// "I don't recognise this access": a patient reports one event of their
// access list; the privacy officer sees the open reports at
// /privacy/reports and closes them with a note. The comment and the note
// may hold PHI: they are sealed with the patient's data key (record
// service) before they are stored, and never logged. Each step is
// audited, and a failure to audit fails the request.

// ReportStore keeps access reports (sqldb.Store implements it). It
// returns storage.ErrNotFound and storage.ErrConflict as documented on
// sqldb's methods.
type ReportStore interface {
	CreateAccessReport(ctx context.Context, r storage.AccessReport) error
	OpenAccessReports(ctx context.Context, limit int) ([]storage.AccessReport, error)
	AccessReport(ctx context.Context, id string) (storage.AccessReport, error)
	CloseAccessReport(ctx context.Context, id, closer string, at time.Time, note []byte) error
}

// AuditFunc seals an audit event and makes it durable before it returns
// (the app: audit.Log.Seal, then the batcher). An error means the event
// is not recorded; the caller fails the request.
type AuditFunc func(ctx context.Context, ev audit.Event) error

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
	if u.reports == nil || u.auditFn == nil || u.access == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable",
			"Reports cannot be sent from this server right now. Contact the privacy office.", errors.New("no report store or audit"))
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
	id, err := u.newReportID()
	if err != nil {
		return err
	}
	rep := storage.AccessReport{ID: id, Patient: owner.String(), Leaf: leaf, Reporter: v.P.ID, Created: u.now().UTC()}
	if comment != "" {
		if rep.Comment, err = u.rec.SealReportNote(r.Context(), owner, id, record.ReportComment, []byte(comment)); err != nil {
			return err
		}
	}
	c := portalCaller(r, v)
	ev := audit.Event{Time: rep.Created, Action: audit.ActionAccessReport, Outcome: audit.OutcomeSuccess, Agent: c.Agent,
		Purpose: c.Purpose, Patients: []string{owner.String()}, Entities: []string{"AuditEvent/" + row.ID, "AccessReport/" + id},
		RequestID: c.RequestID, Status: http.StatusSeeOther}
	// Audit first: a report that cannot be audited is not stored.
	if err := u.auditFn(r.Context(), ev); err != nil {
		return auditUnavailable(err)
	}
	if err := u.reports.CreateAccessReport(r.Context(), rep); err != nil {
		return err
	}
	return site.Redirect(w, r, "/portal/access/"+row.ID+"/report?sent=1")
}

func auditUnavailable(err error) error {
	return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
		Msg: "Nothing was saved, because it could not be recorded in the audit log. Try again in a moment.", RetryAfter: time.Second, Err: err}
}

func (u *UI) newReportID() (string, error) {
	var b [16]byte
	rd := u.rand
	if rd == nil {
		rd = rand.Reader
	}
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
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
	When                        time.Time
	Comment                     string
}

type reportsView struct {
	Rows   []reportRow
	Closed bool
}

func (u *UI) reportsPage(w http.ResponseWriter, r *http.Request) error {
	if u.reports == nil || u.auditFn == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable", "Access reports cannot be read on this server.", errors.New("no report store"))
	}
	v := site.ViewerFrom(r.Context())
	reps, err := u.reports.OpenAccessReports(r.Context(), maxOpenReports)
	if err != nil {
		return err
	}
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	ev := audit.Event{Time: u.now().UTC(), Action: audit.ActionAccessReportRead, Outcome: audit.OutcomeSuccess, Agent: c.Agent,
		Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}
	for _, rep := range reps {
		// Each report is its patient's: each patient's view of this
		// event names only their own reports.
		ev.Touch("AccessReport/"+rep.ID, rep.Patient)
	}
	// The comments are opened only after the read is recorded.
	if err := u.auditFn(r.Context(), ev); err != nil {
		return auditUnavailable(err)
	}
	view := reportsView{Closed: r.URL.Query().Get("closed") == "1"}
	for _, rep := range reps {
		row := reportRow{ID: rep.ID, Patient: rep.Patient, Leaf: strconv.FormatInt(rep.Leaf, 10), When: rep.Created, Reporter: rep.Reporter}
		if len(rep.Comment) > 0 {
			txt, err := u.rec.OpenReportNote(r.Context(), ident.Owner(rep.Patient), rep.ID, record.ReportComment, rep.Comment)
			if err != nil {
				row.Comment = "(the comment cannot be opened: the patient's record may have been erased)"
			} else {
				row.Comment = string(txt)
			}
		}
		view.Rows = append(view.Rows, row)
	}
	u.site.Render(w, r, http.StatusOK, "privacy-reports", site.PageData{Title: "Access reports", Viewer: v, Nav: "privacy", Data: view})
	return nil
}

func (u *UI) reportClose(w http.ResponseWriter, r *http.Request) error {
	if u.reports == nil || u.auditFn == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Reports are unavailable", "Access reports cannot be closed on this server.", errors.New("no report store"))
	}
	v := site.ViewerFrom(r.Context())
	id := r.PathValue("rid")
	rep, err := u.reports.AccessReport(r.Context(), id)
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
	var sealed []byte
	if note != "" {
		if sealed, err = u.rec.SealReportNote(r.Context(), ident.Owner(rep.Patient), rep.ID, record.ReportCloseNote, []byte(note)); err != nil {
			return err
		}
	}
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	now := u.now().UTC()
	ev := audit.Event{Time: now, Action: audit.ActionAccessReportClose, Outcome: audit.OutcomeSuccess, Agent: c.Agent,
		Purpose: c.Purpose, Patients: []string{rep.Patient}, Entities: []string{"AccessReport/" + rep.ID, "AuditEvent/" + strconv.FormatInt(rep.Leaf, 10)},
		RequestID: c.RequestID, Status: http.StatusSeeOther}
	if err := u.auditFn(r.Context(), ev); err != nil {
		return auditUnavailable(err)
	}
	err = u.reports.CloseAccessReport(r.Context(), rep.ID, v.P.ID, now, sealed)
	if errors.Is(err, storage.ErrConflict) {
		return site.Redirect(w, r, "/privacy/reports?closed=1") // closed meanwhile: nothing left to do
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/privacy/reports?closed=1")
}
