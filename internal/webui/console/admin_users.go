package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// Account administration pages (security admin): list and search,
// invite, roles, disable/enable, MFA reset, sessions. Every change is a
// call to Accounts, which audits it.

// userPage is the number of accounts on one page of the list.
const userPage = 50

// maxUserScan bounds the accounts a search reads (STYLE rule 24): a
// search filters pages of the directory, which is ordered by username.
const maxUserScan = 20_000

// maxQuery bounds a search term.
const maxQuery = 128

type userRow struct {
	ID, Username, DisplayName, Roles, FHIRUser string
	Disabled, MFAEnrolled, PasswordSet         bool
}

func toUserRow(x identity.User) userRow {
	return userRow{ID: x.ID, Username: x.Username, DisplayName: x.DisplayName, Roles: identity.FormatRoles(x.Roles),
		FHIRUser: x.FHIRUser, Disabled: x.Disabled, MFAEnrolled: x.MFAEnrolled, PasswordSet: x.PasswordHash != ""}
}

type usersView struct {
	Query   string
	Users   []userRow
	Next    string // the "after" cursor of the next page, posted back in a form
	Scanned bool   // the search stopped at maxUserScan
}

// adminUsers lists accounts (GET: the first page; POST: a search or a
// further page, so neither the term nor the cursor is in a URL).
func (u *UI) adminUsers(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	var q, after string
	if r.Method == http.MethodPost {
		q = strings.TrimSpace(r.PostForm.Get("q"))
		after = r.PostForm.Get("after")
		if len(q) > maxQuery || len(after) > 256 {
			return site.PageErr(http.StatusBadRequest, "Search too long", "Shorten the search and try again.", errors.New("console: search term too long"))
		}
	}
	view, err := findUsers(r.Context(), acc.Directory(), q, after)
	if err != nil {
		return u.consoleErr(err)
	}
	u.site.Render(w, r, http.StatusOK, "admin-users", site.PageData{Title: "Accounts", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

// findUsers returns up to userPage accounts after the username after
// whose username, display name or FHIR user contains q (any case),
// reading at most maxUserScan accounts; Next is set when there may be
// more.
func findUsers(ctx context.Context, dir identity.Directory, q, after string) (usersView, error) {
	view := usersView{Query: q}
	needle := strings.ToLower(q)
	match := func(x identity.User) bool {
		return needle == "" || strings.Contains(strings.ToLower(x.Username), needle) ||
			strings.Contains(strings.ToLower(x.DisplayName), needle) || strings.Contains(strings.ToLower(x.FHIRUser), needle)
	}
	for scanned := 0; scanned < maxUserScan; {
		us, err := dir.List(ctx, after, identity.MaxPage)
		if err != nil {
			return usersView{}, err
		}
		for i, x := range us {
			if !match(x) {
				continue
			}
			view.Users = append(view.Users, toUserRow(x))
			if len(view.Users) == userPage {
				if i < len(us)-1 || len(us) == identity.MaxPage {
					view.Next = x.Username
				}
				return view, nil
			}
		}
		if len(us) < identity.MaxPage {
			return view, nil
		}
		scanned += len(us)
		after = us[len(us)-1].Username
	}
	// The scan bound was reached: offer to search further.
	view.Next, view.Scanned = after, true
	return view, nil
}

type inviteView struct {
	Error                           string
	Username, DisplayName, FHIRUser string
	Roles                           []roleChoice
	Created                         *userRow
	Secret                          string // the one-time enrolment secret, only in the answer to the POST
	Link                            string // the invitation link, carrying Secret in its fragment
	Pending                         *requestRow
}

type roleChoice struct {
	Name    string
	Checked bool
}

func roleChoices(have []string) []roleChoice {
	var out []roleChoice
	for _, r := range identity.Roles() {
		if r == identity.RoleSystem {
			continue // service clients authenticate with keys, not accounts
		}
		out = append(out, roleChoice{Name: string(r), Checked: slices.Contains(have, string(r))})
	}
	return out
}

func (u *UI) adminInviteForm(w http.ResponseWriter, r *http.Request) error {
	if u.console.Accounts == nil {
		return unavailable("Account administration")
	}
	u.site.Render(w, r, http.StatusOK, "admin-invite", site.PageData{Title: "Invite a user", Viewer: site.ViewerFrom(r.Context()), Nav: "admin",
		Data: inviteView{Roles: roleChoices(nil)}})
	return nil
}

// parseRoles reads the role checkboxes of a form.
func parseFormRoles(r *http.Request) ([]identity.Role, []string, error) {
	names := r.PostForm["role"]
	if len(names) > identity.MaxRoles {
		return nil, names, &identity.FieldError{Field: "roles", Reason: fmt.Sprintf("more than %d roles", identity.MaxRoles)}
	}
	out := make([]identity.Role, 0, len(names))
	for _, n := range names {
		x, err := identity.ParseRole(n)
		if err != nil || x == identity.RoleSystem {
			return nil, names, &identity.FieldError{Field: "roles", Reason: "unknown role"}
		}
		out = append(out, x)
	}
	return out, names, nil
}

// adminInvite creates the account and shows its enrolment secret, once.
func (u *UI) adminInvite(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	v := site.ViewerFrom(r.Context())
	f := r.PostForm
	view := inviteView{Username: strings.TrimSpace(f.Get("username")), DisplayName: strings.TrimSpace(f.Get("display_name")),
		FHIRUser: strings.TrimSpace(f.Get("fhir_user"))}
	roles, names, err := parseFormRoles(r)
	view.Roles = roleChoices(names)
	if err == nil {
		nu, secret, aerr := acc.Add(r.Context(), consoleAgent(r, v), identity.User{Username: view.Username, DisplayName: view.DisplayName, Roles: roles, FHIRUser: view.FHIRUser})
		err = aerr
		if err == nil {
			row := toUserRow(nu)
			view.Created, view.Secret = &row, secret.Reveal()
			view.Link = account.InvitationLink(u.base(r), nu.Username, view.Secret)
			if req, ok, err := acc.PendingRequest(r.Context(), nu.ID); err == nil && ok {
				rr := u.toRequestRow(r, req, map[string]string{})
				view.Pending = &rr
			}
			u.site.Render(w, r, http.StatusCreated, "admin-invite", site.PageData{Title: "User invited", Viewer: v, Nav: "admin", Data: view})
			return nil
		}
	}
	msg, ok := formMessage(err)
	if !ok {
		return u.consoleErr(err)
	}
	view.Error = msg
	u.site.Render(w, r, http.StatusBadRequest, "admin-invite", site.PageData{Title: "Invite a user", Viewer: v, Nav: "admin", Data: view})
	return nil
}

// formMessage is the safe message of a refused change, shown next to the
// form; false for errors that are not the user's to fix.
func formMessage(err error) (string, bool) {
	var fe *identity.FieldError
	switch {
	case errors.As(err, &fe):
		// Field errors name the field and never quote its value.
		return fmt.Sprintf("Check the %s: %s.", strings.ReplaceAll(fe.Field, "_", " "), fe.Reason), true
	case errors.Is(err, identity.ErrExists):
		return "That username is taken. Choose another.", true
	case errors.Is(err, identity.ErrFHIRUserBound):
		return "That FHIR user is already bound to another enabled account: each Practitioner or Patient has at most one. Disable the other account first, or check the reference.", true
	case errors.Is(err, identity.ErrInvalid):
		return "Check the form: a value is not valid.", true
	}
	return "", false
}

// consoleErr maps a service error to a page with a safe message.
func (u *UI) consoleErr(err error) error {
	switch {
	case errors.Is(err, identity.ErrSelf):
		return site.PageErr(http.StatusForbidden, "Not allowed: separation of duties",
			"You cannot change your own account, or approve a request that you made or that is for your account. Ask another security administrator.", err)
	case errors.Is(err, identity.ErrApprover):
		return site.PageErr(http.StatusForbidden, "Not allowed", "An approval needs a security administrator signed in with a second factor.", err)
	case errors.Is(err, identity.ErrRequestPending):
		return site.PageErr(http.StatusConflict, "A request is waiting", "A role request for this account already waits for approval. Approve or reject it first (Pending approvals).", err)
	case errors.Is(err, identity.ErrRequestStale):
		return site.PageErr(http.StatusConflict, "The request can no longer be approved",
			"It expired, or the account's roles changed since it was made. Reject it, and request the change again if it is still needed.", err)
	case errors.Is(err, smart.ErrSelfApproval):
		return site.PageErr(http.StatusForbidden, "Not allowed: separation of duties",
			"You cannot approve a client that you registered or whose approval you requested. Ask another security administrator.", err)
	case errors.Is(err, smart.ErrApprovalStale):
		return site.PageErr(http.StatusConflict, "The request can no longer be approved",
			"It expired, or the client no longer waits for approval. Reject it, and request approval again on the SMART clients page if it is still needed.", err)
	case errors.Is(err, smart.ErrApprovalPending):
		return site.PageErr(http.StatusConflict, "A request is waiting", "An approval request for this client already waits. Approve or reject it first (Pending approvals).", err)
	case errors.Is(err, smart.ErrNotPending):
		return site.PageErr(http.StatusConflict, "Nothing to approve", "This client does not wait for approval.", err)
	case errors.Is(err, smart.ErrRequester):
		return site.PageErr(http.StatusForbidden, "Not allowed", smart.ErrRequester.Error()+".", err)
	case errors.Is(err, smart.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such client or request. It may have been decided already.", err)
	case errors.Is(err, session.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "No such session", "This session does not exist or has already ended.", err)
	case errors.Is(err, identity.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such entry. It may have been removed.", err)
	case errors.Is(err, storage.ErrConflict):
		return site.PageErr(http.StatusConflict, "Already done", "Someone else changed this entry first. Reload the page to see its current state.", err)
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, audit.ErrUnavailable), errors.Is(err, password.ErrBusy):
		return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
			Msg: "The service is temporarily unavailable, so nothing was changed. Try again in a moment.", RetryAfter: time.Second, Err: err}
	}
	if msg, ok := formMessage(err); ok {
		return site.PageErr(http.StatusBadRequest, "Not accepted", msg, err)
	}
	return err
}

type adminSessionRow struct {
	ID                         string
	Created, LastSeen, Expires time.Time
	MFA                        bool
	Address                    string
}

type userView struct {
	User     userRow
	Roles    []roleChoice
	Sessions []adminSessionRow
	Done     string
	// Self is the viewer's own account: its forms are not offered
	// (separation of duties; the server refuses them anyway).
	Self    bool
	Pending *requestRow
}

// doneMessages are the confirmations a redirect after a change may ask
// for (?done=<key>): fixed text, nothing from the request is echoed.
var doneMessages = map[string]string{
	"roles":     "Roles saved. The user's sessions were ended, so the new roles apply from the next sign-in.",
	"requested": "Saved. The roles that reach patient data wait for a second security administrator's approval (Pending approvals); the others apply from the user's next sign-in.",
	"disabled":  "Account disabled. Every session of the user was ended.",
	"enabled":   "Account enabled.",
	"reset-mfa": "Second factor reset. The user's sessions were ended; they set up a second step at the next sign-in.",
	"revoked":   "Session ended.",
}

func (u *UI) adminUser(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	id := r.PathValue("id")
	x, err := acc.Directory().ByID(r.Context(), id)
	if err != nil {
		return u.consoleErr(err)
	}
	ss, err := acc.Sessions(r.Context(), id)
	if err != nil {
		return u.consoleErr(err)
	}
	row := toUserRow(x)
	v := site.ViewerFrom(r.Context())
	view := userView{User: row, Roles: roleChoices(strings.Split(row.Roles, ",")), Done: doneMessages[r.URL.Query().Get("done")], Self: x.ID == v.P.ID}
	req, ok, err := acc.PendingRequest(r.Context(), x.ID)
	if err != nil {
		return u.consoleErr(err)
	}
	if ok {
		rr := u.toRequestRow(r, req, map[string]string{})
		view.Pending = &rr
	}
	for _, s := range ss {
		view.Sessions = append(view.Sessions, adminSessionRow{ID: s.ID, Created: s.Created, LastSeen: s.LastSeen, Expires: s.ExpiresAbsolute, MFA: s.MFA, Address: s.Address})
	}
	title := x.Username
	if x.DisplayName != "" {
		title = x.DisplayName
	}
	u.site.Render(w, r, http.StatusOK, "admin-user", site.PageData{Title: title, Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

func userURL(id, done string) string {
	return "/admin/users/" + id + "?done=" + done
}

func (u *UI) adminSetRoles(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	roles, _, err := parseFormRoles(r)
	if err != nil {
		return u.consoleErr(err)
	}
	v := site.ViewerFrom(r.Context())
	x, err := acc.SetRoles(r.Context(), consoleAgent(r, v), r.PathValue("id"), roles)
	if err != nil {
		return u.consoleErr(err)
	}
	done := "roles"
	if req, ok, err := acc.PendingRequest(r.Context(), x.ID); err == nil && ok && req.RequestedBy == v.P.ID {
		done = "requested"
	}
	return site.Redirect(w, r, userURL(x.ID, done))
}

func (u *UI) adminSetDisabled(disabled bool) site.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		acc := u.console.Accounts
		if acc == nil {
			return unavailable("Account administration")
		}
		x, err := acc.SetDisabled(r.Context(), consoleAgent(r, site.ViewerFrom(r.Context())), r.PathValue("id"), disabled)
		if err != nil {
			return u.consoleErr(err)
		}
		done := "enabled"
		if disabled {
			done = "disabled"
		}
		return site.Redirect(w, r, userURL(x.ID, done))
	}
}

func (u *UI) adminResetMFAConfirm(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	x, err := acc.Directory().ByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return u.consoleErr(err)
	}
	u.site.Render(w, r, http.StatusOK, "admin-reset-mfa", site.PageData{Title: "Reset second factor", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: toUserRow(x)})
	return nil
}

func (u *UI) adminResetMFA(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	if r.PostForm.Get("confirm") != "yes" {
		return site.PageErr(http.StatusBadRequest, "Not confirmed", "Tick the confirmation box to reset the second factor.", errors.New("console: reset-mfa without confirmation"))
	}
	x, err := acc.ResetMFA(r.Context(), consoleAgent(r, site.ViewerFrom(r.Context())), r.PathValue("id"))
	if err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, userURL(x.ID, "reset-mfa"))
}

// adminRevokeSession ends one session of user id. The session must be
// one of that user's, so a form cannot be pointed at another account's.
func (u *UI) adminRevokeSession(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	id, sid := r.PathValue("id"), r.PathValue("sid")
	ss, err := acc.Sessions(r.Context(), id)
	if err != nil {
		return u.consoleErr(err)
	}
	if !slices.ContainsFunc(ss, func(s session.Session) bool { return s.ID == sid }) {
		return u.consoleErr(session.ErrNotFound)
	}
	if err := acc.RevokeSession(r.Context(), consoleAgent(r, site.ViewerFrom(r.Context())), sid); err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, userURL(id, "revoked"))
}

// base is the public base URL for links the console hands out.
func (u *UI) base(r *http.Request) string {
	if u.baseURL != "" {
		return u.baseURL
	}
	return "https://" + r.Host
}
