package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/webui/site"
)

// Audit log search (auditor, privacy officer). The form is POSTed, so
// no patient reference, account or date is in a URL; paging is a POST
// too. Every search and every opened event goes through index.Reader,
// which records the read of the log (the parameter names, the positions
// returned, the patient searched for) before answering: a failure to
// record it fails the page.

// AuditSearch is the audit index reader (index.Reader), as the
// FHIR AuditEvent endpoint uses it.
type AuditSearch interface {
	Search(ctx context.Context, c index.Caller, f index.Filter) ([]index.Entry, error)
	Get(ctx context.Context, c index.Caller, leaf int64) (index.Entry, error)
}

// auditPage is the number of events on one page of results.
const auditPage = 50

// maxAuditField bounds each search field.
const maxAuditField = 128

var auditReaders = []identity.Role{identity.RoleAuditor, identity.RolePrivacyOfficer}

// auditActions are the actions the form offers.
var auditActions = []string{"read", "vread", "search-type", "history", "history-type", "history-system", "capabilities", "request", "rate-limit", "create", "update", "delete", "transaction", "batch", "$everything", "$erase",
	"import", "key-rotate", "key-escrow", "login", "login-password", "logout", "lockout", "mfa-enroll", "mfa-verify", "recovery-code-used", "session-revoke", "sso-login",
	"token-create", "client-register", "client-disable", "user-create", "user-disable", "user-enable", "user-set-roles", "user-reset-mfa", "user-set-password", "user-admin",
	"passkey-add", "passkey-remove", "break-glass", "break-glass-review", "policy-change", "policy-explain", "reindex",
	"access-report", "access-report-read", "access-report-close", "people-lookup", "export",
	"monitor-alert", "monitor-alert-read", "monitor-alert-disposition", "monitor-alert-assign", "monitor-alert-note", "monitor-suppress", "monitor-ingest"}

type auditForm struct {
	Patient, Agent, Action, Outcome, From, To string
	Before                                    int64
}

type auditRow struct {
	Index                         int64
	Time                          time.Time
	Action, Outcome, User, Client string
	Words                         string // the action in words (actionText)
	Role                          string
	Patients                      string
	Purpose                       string
}

type auditView struct {
	Form    auditForm
	Actions []actionOption
	Export  bool // the export buttons (the trail is configured)
	// ExportBefore bounds the export to the events shown and older: the
	// position after this page's newest event (the searches since, of
	// this one included, are not in the file).
	ExportBefore int64
	Searched     bool
	Error        string
	Rows         []auditRow
	Next         int64 // "before" of the next page; 0 = none
}

func (u *UI) auditCaller(r *http.Request) index.Caller {
	v := site.ViewerFrom(r.Context())
	return index.Caller{Agent: consoleAgent(r, v), Purpose: "HOPERAT", RequestID: requestID(r)}
}

func (u *UI) adminAudit(w http.ResponseWriter, r *http.Request) error {
	if u.console.AuditLog == nil {
		return unavailable("Audit log search")
	}
	view := auditView{Actions: actionOptions(), Export: u.console.Exports != nil}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		view.Searched = true
		form, err := parseAuditForm(r)
		if err != nil {
			return err
		}
		view.Form = form
		filter, msg := u.auditFilter(r, view.Form)
		if msg != "" {
			view.Error, status = msg, http.StatusBadRequest
			// A date input cannot hold what is not a date: clear it.
			for _, d := range []*string{&view.Form.From, &view.Form.To} {
				if _, err := time.Parse("2006-01-02", *d); err != nil {
					*d = ""
				}
			}
		} else {
			es, err := u.console.AuditLog.Search(r.Context(), u.auditCaller(r), filter)
			if err != nil {
				return u.consoleErr(err)
			}
			view.Rows = u.auditRows(r, es)
			if len(es) > 0 {
				view.ExportBefore = es[0].Index + 1
			}
			if len(es) == auditPage {
				view.Next = es[len(es)-1].Index
			}
		}
	}
	u.site.Render(w, r, status, "admin-audit", site.PageData{Title: "Audit log search", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

// parseAuditForm reads the POSTed search form (the search, its paging
// and its export share it).
func parseAuditForm(r *http.Request) (auditForm, error) {
	f := r.PostForm
	form := auditForm{Patient: strings.TrimSpace(f.Get("patient")), Agent: strings.TrimSpace(f.Get("agent")),
		Action: f.Get("action"), Outcome: f.Get("outcome"), From: f.Get("from"), To: f.Get("to")}
	if b := f.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return form, site.PageErr(http.StatusBadRequest, "Form not understood", "Go back, reload the page and try again.", errors.New("console: bad audit page cursor"))
		}
		form.Before = n
	}
	return form, nil
}

// auditRows says events for the results table and the exports: names
// from the directory, actions in words.
func (u *UI) auditRows(r *http.Request, es []index.Entry) []auditRow {
	names := map[string]string{}
	rows := make([]auditRow, 0, len(es))
	for _, e := range es {
		ev := e.Event
		user := u.personName(r, ev.Agent.User, names)
		if user == "" {
			user = ev.Agent.User
		}
		rows = append(rows, auditRow{Index: e.Index, Time: ev.Time, Action: string(ev.Action), Words: actionText(ev), Outcome: string(ev.Outcome),
			User: user, Role: ev.Agent.Role, Client: ev.Agent.Client, Patients: strings.Join(ev.Patients, ", "), Purpose: ev.Purpose})
	}
	return rows
}

// auditFilter turns the form into an index filter, or a message saying
// what to fix (never echoing a value).
func (u *UI) auditFilter(r *http.Request, f auditForm) (index.Filter, string) {
	for _, s := range []string{f.Patient, f.Agent, f.Action, f.Outcome, f.From, f.To} {
		if len(s) > maxAuditField {
			return index.Filter{}, "A field is too long."
		}
	}
	out := index.Filter{Before: f.Before, Limit: auditPage}
	if f.Patient != "" {
		p := strings.TrimPrefix(f.Patient, ident.PatientPrefix)
		if p == "" || strings.ContainsAny(p, "/?# ") {
			return index.Filter{}, "The patient must be a patient id, or Patient/ and the id."
		}
		out.Patient = ident.PatientRef(p).String()
	}
	if f.Agent != "" {
		// A username, or an account or token id as recorded.
		out.Agent = f.Agent
		if x, err := u.users.ByUsername(r.Context(), f.Agent); err == nil {
			out.Agent = x.ID
		}
	}
	if f.Action != "" {
		if !slices.Contains(auditActions, f.Action) {
			return index.Filter{}, "Choose an action from the list."
		}
		out.Action = audit.Action(f.Action)
	}
	switch audit.Outcome(f.Outcome) {
	case "", audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeError:
		out.Outcome = audit.Outcome(f.Outcome)
	default:
		return index.Filter{}, "Choose an outcome from the list."
	}
	var err error
	if f.From != "" {
		if out.Since, err = time.Parse("2006-01-02", f.From); err != nil {
			return index.Filter{}, "The start date must be a date (year-month-day)."
		}
	}
	if f.To != "" {
		t, err := time.Parse("2006-01-02", f.To)
		if err != nil {
			return index.Filter{}, "The end date must be a date (year-month-day)."
		}
		out.Until = t.Add(24 * time.Hour) // the end date is included
	}
	if !out.Since.IsZero() && !out.Until.IsZero() && !out.Since.Before(out.Until) {
		return index.Filter{}, "The start date must be on or before the end date."
	}
	return out, ""
}

type auditDetail struct {
	Index int64
	Event audit.Event
	User  string
	Words string
}

// adminAuditEvent shows one event (the read is recorded by the reader).
func (u *UI) adminAuditEvent(w http.ResponseWriter, r *http.Request) error {
	if u.console.AuditLog == nil {
		return unavailable("Audit log search")
	}
	n, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || n < 0 {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such audit event.", err)
	}
	e, err := u.console.AuditLog.Get(r.Context(), u.auditCaller(r), n)
	if errors.Is(err, index.ErrNotFound) {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such audit event.", err)
	}
	if err != nil {
		return u.consoleErr(err)
	}
	d := auditDetail{Index: e.Index, Event: e.Event, User: u.personName(r, e.Event.Agent.User, map[string]string{}), Words: actionText(e.Event)}
	u.site.Render(w, r, http.StatusOK, "admin-audit-event", site.PageData{Title: "Audit event " + strconv.FormatInt(n, 10), Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: d})
	return nil
}
