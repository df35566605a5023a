package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/webui/site"
)

// Pending approvals (security admin): the two-person rule of ADR 0018
// and ADR 0020. A role grant that reaches patient data, a new security
// admin, or a SMART client whose grants reach patient data waits here
// until a second administrator approves or rejects it. Each decision
// goes through Accounts (user-grant-approve, user-grant-reject)
// or Clients (client-grant-approve, client-grant-reject), which
// audit it in the transaction that makes it and raise the approval's
// alert. The page never offers a viewer the approval of their own
// request, of a grant for their own account, or of a client they
// registered; the services refuse it anyway (identity.ErrSelf,
// smart.ErrSelfApproval).

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

// toRequestRow describes req for the viewer of r; names caches
// usernames by account id.
func (u *UI) toRequestRow(r *http.Request, req identity.Request, names map[string]string) requestRow {
	v := site.ViewerFrom(r.Context())
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

// clientRequestRow is a pending client approval request as the
// console shows it: what the client could reach once approved.
type clientRequestRow struct {
	ID, ClientID, Name, Type, Scopes, Keys string
	RedirectURIs                           []string
	RegisteredBy, RequestedBy              string // usernames (or ids)
	Created, Expires                       time.Time
	Mine                                   bool // registered or requested by the viewer
	MayApprove                             bool
}

type requestsView struct {
	Requests       []requestRow
	ClientRequests []clientRequestRow
	Done           string
}

var requestDone = map[string]string{
	"approved":        "Approved. The roles are in force from the user's next sign-in; the privacy officer was alerted.",
	"rejected":        "Rejected. Nothing changed on the account.",
	"client-approved": "Approved. The client may now obtain tokens within its scopes; the privacy officer was alerted.",
	"client-rejected": "Rejected. The client can never obtain a token; register a new one if it is needed after all.",
}

// toClientRequestRow describes p for the viewer of r.
func (u *UI) toClientRequestRow(r *http.Request, p smart.PendingClient, names map[string]string) clientRequestRow {
	v := site.ViewerFrom(r.Context())
	c := p.Client
	keys := "none: a public app (PKCE only)"
	switch {
	case c.JWKSURL != "":
		keys = "published at " + c.JWKSURL + " (whoever controls that URL controls the keys)"
	case len(c.JWKS) > 0:
		keys = "a JWK Set uploaded at registration"
	}
	row := clientRequestRow{ID: p.Request.ID, ClientID: c.ID, Name: c.Name, Type: string(c.Type), Scopes: c.Scopes.String(), Keys: keys,
		RedirectURIs: c.RedirectURIs, Created: p.Request.Created, Expires: p.Request.Expires,
		Mine: v != nil && (p.Request.RequestedBy == v.P.ID || c.RegisteredBy == v.P.ID)}
	row.MayApprove = !row.Mine
	name := func(id string) string {
		if n := u.userName(r, id, names); n != "" {
			return n
		}
		return id
	}
	row.RegisteredBy, row.RequestedBy = name(c.RegisteredBy), name(p.Request.RequestedBy)
	return row
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
	if cs := u.console.Clients; cs != nil {
		ps, err := cs.Requests(r.Context())
		if err != nil {
			return u.consoleErr(err)
		}
		for _, p := range ps {
			view.ClientRequests = append(view.ClientRequests, u.toClientRequestRow(r, p, names))
		}
	}
	u.site.Render(w, r, http.StatusOK, "admin-requests", site.PageData{Title: "Pending approvals", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

// adminDecide approves or rejects request rid: a role request, or a
// client request (its id starts smart.ClientRequestPrefix).
func (u *UI) adminDecide(approve bool) site.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasPrefix(r.PathValue("rid"), smart.ClientRequestPrefix) {
			return u.adminDecideClient(w, r, approve)
		}
		acc := u.console.Accounts
		if acc == nil {
			return unavailable("Account administration")
		}
		agent := consoleAgent(r, site.ViewerFrom(r.Context()))
		if approve {
			if _, err := acc.Approve(r.Context(), agent, r.PathValue("rid")); err != nil {
				return u.consoleErr(err)
			}
			return site.Redirect(w, r, "/admin/requests?done=approved")
		}
		if err := acc.Reject(r.Context(), agent, r.PathValue("rid")); err != nil {
			return u.consoleErr(err)
		}
		return site.Redirect(w, r, "/admin/requests?done=rejected")
	}
}

// adminDecideClient approves or rejects client request rid.
func (u *UI) adminDecideClient(w http.ResponseWriter, r *http.Request, approve bool) error {
	cs := u.console.Clients
	if cs == nil {
		return unavailable("Client administration")
	}
	agent := consoleAgent(r, site.ViewerFrom(r.Context()))
	if approve {
		if _, err := cs.Approve(r.Context(), agent, r.PathValue("rid")); err != nil {
			return u.consoleErr(err)
		}
		return site.Redirect(w, r, "/admin/requests?done=client-approved")
	}
	if err := cs.Reject(r.Context(), agent, r.PathValue("rid")); err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, "/admin/requests?done=client-rejected")
}
