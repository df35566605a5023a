package webui

import (
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/identity"
)

// Pending approvals (security admin): the two-person rule of ADR 0018.
// A role grant that reaches patient data, or a new security admin,
// waits here until a second administrator approves or rejects it. Each
// decision goes through ConsoleAccounts, which audits it
// (user-grant-approve, user-grant-reject) in the transaction that makes
// it and raises the approval's alert. The page never offers a viewer
// the approval of their own request, or of a grant for their own
// account; the service refuses it anyway (identity.ErrSelf).

// requestRow is a pending request as the console shows it.
type requestRow struct {
	ID, UserID, Username       string
	Roles, Adds, Base          string
	RequestedBy, RequesterName string
	Created, Expires           time.Time
	Mine, ForMe                bool // made by the viewer; for the viewer's own account
	FHIRUser                   string
	MayApprove                 bool
}

func roleStrings(rs []identity.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// toRequestRow describes req for the viewer of r; names caches
// usernames by account id.
func (u *UI) toRequestRow(r *http.Request, req identity.Request, names map[string]string) requestRow {
	v := viewerFrom(r.Context())
	row := requestRow{ID: req.ID, UserID: req.UserID, Roles: identity.FormatRoles(req.Roles), Adds: identity.FormatRoles(req.Adds()),
		Base: identity.FormatRoles(req.BaseRoles), RequestedBy: req.RequestedBy, Created: req.Created, Expires: req.Expires,
		Mine: v != nil && req.RequestedBy == v.P.ID, ForMe: v != nil && req.UserID == v.P.ID}
	row.MayApprove = !row.Mine && !row.ForMe
	row.Username = u.userName(r, req.UserID, names)
	switch req.RequestedBy {
	case "sso":
		row.RequesterName = "the identity provider's groups"
	default:
		row.RequesterName = u.userName(r, req.RequestedBy, names)
	}
	if x, err := u.users.ByID(r.Context(), req.UserID); err == nil {
		row.FHIRUser = x.FHIRUser
	}
	return row
}

type requestsView struct {
	Requests []requestRow
	Done     string
}

var requestDone = map[string]string{
	"approved": "Approved. The roles are in force from the user's next sign-in; the privacy officer was alerted.",
	"rejected": "Rejected. Nothing changed on the account.",
}

func (u *UI) adminRequests(w http.ResponseWriter, r *http.Request) error {
	acc := u.console.Accounts
	if acc == nil {
		return unavailable("Account administration")
	}
	rs, err := acc.Requests(r.Context())
	if err != nil {
		return u.consoleErr(err)
	}
	names := map[string]string{}
	view := requestsView{Done: requestDone[r.URL.Query().Get("done")]}
	for _, x := range rs {
		view.Requests = append(view.Requests, u.toRequestRow(r, x, names))
	}
	u.render(w, r, http.StatusOK, "admin-requests", pageData{Title: "Pending approvals", Viewer: viewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

// adminDecide approves or rejects request rid.
func (u *UI) adminDecide(approve bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		acc := u.console.Accounts
		if acc == nil {
			return unavailable("Account administration")
		}
		agent := consoleAgent(r, viewerFrom(r.Context()))
		if approve {
			if _, err := acc.Approve(r.Context(), agent, r.PathValue("rid")); err != nil {
				return u.consoleErr(err)
			}
			return redirect(w, r, "/admin/requests?done=approved")
		}
		if err := acc.Reject(r.Context(), agent, r.PathValue("rid")); err != nil {
			return u.consoleErr(err)
		}
		return redirect(w, r, "/admin/requests?done=rejected")
	}
}
