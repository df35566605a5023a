package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// The staff administration console (/admin): account administration for
// security admins, the break-the-glass review desk for privacy officers
// and the audit log status for auditors and security admins.
//
// # Security invariants
//
//   - Every console page and form checks the viewer's roles and a
//     verified second factor ([consoleGate]); a refusal is audited
//     (user-admin, denied) before the 403 page, as /admin/api does.
//   - Every change goes through the same services as the JSON admin API
//     (account.Service, authz.Desk), which audit it in the transaction that
//     makes it. The console never writes to storage itself.
//   - Nothing secret or personal travels in a URL: searches and paging
//     are POSTed; paths carry opaque account, session and review ids only.
//   - The enrolment secret of a new account is rendered once, in the
//     answer to the POST that created it (Cache-Control: no-store), and
//     never logged or stored in the clear.

// Accounts is the account service the console uses (account.Service,
// the same service as /admin/api/users). Every change method audits the
// change in its own transaction.
//
// DEVIATION from STYLE rule 14 (1–3 methods): the console needs each
// operation of the admin API; splitting would only add names.
type Accounts interface {
	Directory() identity.Directory
	Add(ctx context.Context, actor audit.Agent, u identity.User) (identity.User, authn.Secret, error)
	SetDisabled(ctx context.Context, actor audit.Agent, id string, disabled bool) (identity.User, error)
	SetRoles(ctx context.Context, actor audit.Agent, id string, roles []identity.Role) (identity.User, error)
	ResetMFA(ctx context.Context, actor audit.Agent, id string) (identity.User, error)
	Sessions(ctx context.Context, id string) ([]session.Session, error)
	RevokeSession(ctx context.Context, actor audit.Agent, id string) error
	// Denied records a refused console request; an error means it could
	// not be recorded, and the request fails with 503.
	Denied(ctx context.Context, actor audit.Agent, entity string) error

	// The two-person rule (ADR 0018): pending role requests, and their
	// approval or rejection by a second administrator (audited).
	Requests(ctx context.Context) ([]identity.Request, error)
	PendingRequest(ctx context.Context, userID string) (identity.Request, bool, error)
	Approve(ctx context.Context, actor audit.Agent, id string) (identity.User, error)
	Reject(ctx context.Context, actor audit.Agent, id string) error
}

// Reviews is the privacy officer's desk (authz.Desk): closing a
// review is audited by the desk.
type Reviews interface {
	List(ctx context.Context, open bool, limit int) ([]authz.Review, error)
	Close(ctx context.Context, agent audit.Agent, requestID, id, outcome, note string) (authz.Review, error)
	Alerts(ctx context.Context, limit int) ([]authz.Alert, error)
	// Reason opens the clinician's sealed free-text reason (audited).
	Reason(ctx context.Context, agent audit.Agent, requestID, id string) (string, error)
}

// Verification is the outcome of the last full verification of the
// audit log (sqldb.Verification).
type Verification struct {
	Finished time.Time
	Size     int64
	OK       bool
	Detail   string // the first divergence; never event content
}

// Services configures the administration console. A nil service makes
// its pages answer 503; the role checks apply regardless.
type Services struct {
	Accounts Accounts
	Reviews  Reviews
	// Clients administers SMART clients (smart.Admin).
	Clients Clients
	// PolicyVersions lists the recorded versions of the policy set,
	// newest first.
	PolicyVersions func(ctx context.Context, limit int) ([]PolicyVersion, error)
	// AuditLog searches the audit log (index.Reader), auditing each read.
	AuditLog AuditSearch
	// Exports records the exports of audit searches (privacy.Trail); nil
	// offers no export.
	Exports Exporter
	// LastVerification returns the last full verification of the audit
	// log, or an error wrapping storage.ErrNotFound when none ran.
	LastVerification func(ctx context.Context) (Verification, error)
	// Monitor is the triage of privacy and intrusion monitoring's alerts
	// (alerts.Service, admin_monitor.go); nil answers 503 there.
	Monitor Monitor
	// Backups reads the state of scheduled backups and drills
	// (app.BackupStatus, admin_backups.go); nil answers 503 there.
	Backups func(ctx context.Context) (schedule.Status, error)
}

// consoleAgent is the audit agent of a console request: ids only.
func consoleAgent(r *http.Request, v *site.Viewer) audit.Agent {
	return site.Caller(r, v).Agent
}

// consoleGate refuses a viewer without one of roles (or without a
// verified second factor), auditing the refusal first.
func (u *UI) consoleGate(r *http.Request, roles []identity.Role) error {
	v := site.ViewerFrom(r.Context())
	if v.P.MFA && v.HasRole(roles...) {
		return nil
	}
	if u.console.Accounts != nil {
		entity := ""
		if id := r.PathValue("id"); id != "" && len(id) <= identity.MaxIDLen {
			entity = "User/" + id
		}
		if err := u.console.Accounts.Denied(r.Context(), consoleAgent(r, v), entity); err != nil {
			return site.PageErr(http.StatusServiceUnavailable, "Temporarily unavailable",
				"The refusal of this request could not be recorded, so nothing was shown. Try again in a moment.", err)
		}
	}
	names := make([]string, len(roles))
	for i, x := range roles {
		names[i] = string(x)
	}
	return site.PageErr(http.StatusForbidden, "Not available to your role",
		"This part of the administration console needs one of these roles, with a second step at sign-in: "+strings.Join(names, ", ")+".",
		errors.New("console: viewer lacks the role"))
}

// staff is signedIn plus the console gate for roles.
func (u *UI) staff(roles []identity.Role, h site.HandlerFunc) site.HandlerFunc {
	return u.site.SignedIn(func(w http.ResponseWriter, r *http.Request) error {
		if err := u.consoleGate(r, roles); err != nil {
			return err
		}
		return h(w, r)
	})
}

// staffForm is form (CSRF) plus the console gate for roles.
func (u *UI) staffForm(roles []identity.Role, h site.HandlerFunc) site.HandlerFunc {
	return u.site.Form(func(w http.ResponseWriter, r *http.Request) error {
		if err := u.consoleGate(r, roles); err != nil {
			return err
		}
		return h(w, r)
	})
}

var (
	secAdmin      = []identity.Role{identity.RoleSecurityAdmin}
	privacyOffice = []identity.Role{identity.RolePrivacyOfficer}
	logReaders    = []identity.Role{identity.RoleAuditor, identity.RoleSecurityAdmin}
	consoleAnyone = site.ConsoleRoles
)

// Routes mounts the console on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	mux.Handle("GET /admin", u.site.Handle(u.staff(consoleAnyone, u.adminHome)))

	// Accounts (admin_users.go).
	mux.Handle("GET /admin/users", u.site.Handle(u.staff(secAdmin, u.adminUsers)))
	mux.Handle("POST /admin/users", u.site.Handle(u.staffForm(secAdmin, u.adminUsers)))
	mux.Handle("GET /admin/users/new", u.site.Handle(u.staff(secAdmin, u.adminInviteForm)))
	mux.Handle("POST /admin/users/new", u.site.Handle(u.staffForm(secAdmin, u.adminInvite)))
	mux.Handle("GET /admin/users/{id}", u.site.Handle(u.staff(secAdmin, u.adminUser)))
	mux.Handle("POST /admin/users/{id}/roles", u.site.Handle(u.staffForm(secAdmin, u.adminSetRoles)))
	mux.Handle("POST /admin/users/{id}/disable", u.site.Handle(u.staffForm(secAdmin, u.adminSetDisabled(true))))
	mux.Handle("POST /admin/users/{id}/enable", u.site.Handle(u.staffForm(secAdmin, u.adminSetDisabled(false))))
	mux.Handle("GET /admin/users/{id}/reset-mfa", u.site.Handle(u.staff(secAdmin, u.adminResetMFAConfirm)))
	mux.Handle("POST /admin/users/{id}/reset-mfa", u.site.Handle(u.staffForm(secAdmin, u.adminResetMFA)))
	mux.Handle("POST /admin/users/{id}/sessions/{sid}/revoke", u.site.Handle(u.staffForm(secAdmin, u.adminRevokeSession)))
	mux.Handle("GET /admin/requests", u.site.Handle(u.staff(secAdmin, u.adminRequests)))
	mux.Handle("POST /admin/requests/{rid}/approve", u.site.Handle(u.staffForm(secAdmin, u.adminDecide(true))))
	mux.Handle("POST /admin/requests/{rid}/reject", u.site.Handle(u.staffForm(secAdmin, u.adminDecide(false))))

	// SMART clients (admin_clients.go).
	mux.Handle("GET /admin/clients", u.site.Handle(u.staff(secAdmin, u.adminClients)))
	mux.Handle("POST /admin/clients", u.site.Handle(u.staffForm(secAdmin, u.adminRegisterClient)))
	mux.Handle("POST /admin/clients/{cid}/disable", u.site.Handle(u.staffForm(secAdmin, u.adminDisableClient)))
	mux.Handle("POST /admin/clients/{cid}/request", u.site.Handle(u.staffForm(secAdmin, u.adminRequestClientApproval)))

	// Policy and keys, read-only (admin_policy.go).
	mux.Handle("GET /admin/policy", u.site.Handle(u.staff(secAdmin, u.adminPolicy)))
	mux.Handle("GET /admin/keys", u.site.Handle(u.staff(secAdmin, u.adminKeys)))

	// Backups and restore drills, read-only (admin_backups.go).
	mux.Handle("GET /admin/backups", u.site.Handle(u.staff(secAdmin, u.adminBackups)))

	// Break-the-glass review desk (admin_reviews.go).
	mux.Handle("GET /admin/reviews", u.site.Handle(u.staff(privacyOffice, u.adminReviews)))
	mux.Handle("POST /admin/reviews/{rid}/close", u.site.Handle(u.staffForm(privacyOffice, u.adminCloseReview)))

	// Access alerts of privacy and intrusion monitoring (admin_monitor.go).
	mux.Handle("GET /admin/alerts", u.site.Handle(u.staff(alertTriage, u.adminAlerts)))
	mux.Handle("GET "+AlertPath+"{aid}", u.site.Handle(u.staff(alertTriage, u.adminAlert)))
	mux.Handle("POST /admin/alerts/{aid}/disposition", u.site.Handle(u.staffForm(alertTriage, u.adminAlertDisposition)))
	mux.Handle("POST /admin/alerts/{aid}/assign", u.site.Handle(u.staffForm(alertTriage, u.adminAlertAssign)))
	mux.Handle("POST /admin/alerts/{aid}/notes", u.site.Handle(u.staffForm(alertTriage, u.adminAlertNote)))

	// Audit log search (admin_audit.go).
	mux.Handle("GET /admin/audit", u.site.Handle(u.staff(auditReaders, u.adminAudit)))
	mux.Handle("POST /admin/audit", u.site.Handle(u.staffForm(auditReaders, u.adminAudit)))
	mux.Handle("GET /admin/audit/{index}", u.site.Handle(u.staff(auditReaders, u.adminAuditEvent)))
	mux.Handle("POST /admin/audit/export", u.site.Handle(u.staffForm(auditReaders, u.adminAuditExport)))

	// Audit log status (admin_log.go).
	mux.Handle("GET /admin/log", u.site.Handle(u.staff(logReaders, u.adminLog)))
}

func (u *UI) adminHome(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	u.site.Render(w, r, http.StatusOK, "admin", site.PageData{Title: "Administration", Viewer: v, Nav: "admin"})
	return nil
}

// unavailable is the page of a console service that is not configured.
func unavailable(what string) error {
	return site.PageErr(http.StatusServiceUnavailable, "Not available", what+" is not available on this server.", errors.New("console: "+what+" not configured"))
}

// requestID is the request id, for services that record it.
func requestID(r *http.Request) string { return web.RequestID(r.Context()) }
