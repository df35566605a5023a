package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// SMART client administration (security admin): list, register a
// backend client or an App Launch app, disable. Changes go through
// smart.Admin, which commits each with its audit event. Clients
// authenticate with private_key_jwt (their own key pair) or PKCE, so
// there is no client secret to show: the page shows the new client_id.
//
// # Two-person rule (ADR 0020)
//
// A client whose grants reach patient data (every app; every backend
// service but a read-only terminology feed) is registered pending: it
// obtains no token until a second security administrator approves it
// on the Pending approvals page (admin_requests.go). The registrar is
// never offered the approval, and the service refuses it anyway
// (smart.ErrSelfApproval). A pending client whose request expired can
// be put up for approval again here. There is no enable and no edit:
// disabling is final, and new scopes or keys are a new registration.

// Clients is the client administration service (smart.Admin).
//
// DEVIATION from STYLE rule 14 (1–3 methods): the console needs each
// operation; splitting would only add names.
type Clients interface {
	List(ctx context.Context, limit int) ([]smart.Client, error)
	RegisterBackend(ctx context.Context, actor audit.Agent, reg smart.BackendRegistration) (string, error)
	RegisterApp(ctx context.Context, actor audit.Agent, reg smart.AppRegistration) (string, error)
	Disable(ctx context.Context, actor audit.Agent, id string) error

	// The two-person rule: pending client requests with their clients,
	// a new request for a pending client whose request expired, and the
	// approval or rejection by a second administrator (all audited).
	Requests(ctx context.Context) ([]smart.PendingClient, error)
	RequestApproval(ctx context.Context, actor audit.Agent, id string) (smart.ClientRequest, error)
	Approve(ctx context.Context, actor audit.Agent, id string) (smart.Client, error)
	Reject(ctx context.Context, actor audit.Agent, id string) error
}

// maxClients bounds the clients listed.
const maxClients = 500

// maxJWKSField bounds a pasted JWK Set (the form body is bounded too).
const maxJWKSField = 16 << 10

type clientRow struct {
	ID, Name, Type, Keys, Scopes, Purpose string
	RedirectURIs                          []string
	Created                               time.Time
	Disabled                              bool
	// State says where the client stands with the two-person rule, in
	// words; Waiting is the expiry of its live request, if any;
	// MayRequest offers a new request (pending, no live request).
	State      string
	Waiting    time.Time
	MayRequest bool
}

type clientsView struct {
	Clients []clientRow
	Form    clientForm
	Error   string
	Created string // the new client_id
	// CreatedPending: the new client waits for a second administrator.
	CreatedPending bool
	Done           string
	// Purposes are the purposes of use a backend client may be
	// registered for (smart.Purposes).
	Purposes []string
}

type clientForm struct {
	Name, Kind, JWKS, JWKSURL, Scopes, Redirects, Purpose string
}

var clientDone = map[string]string{
	"disabled":  "Client disabled. Its tokens stop working at their next use.",
	"requested": "Approval requested. Another security administrator decides it under Pending approvals.",
}

func (u *UI) adminClients(w http.ResponseWriter, r *http.Request) error {
	return u.renderClients(w, r, http.StatusOK, clientsView{Form: clientForm{Kind: "backend"}, Done: clientDone[r.URL.Query().Get("done")]})
}

// clientState describes c's approval in words, for the viewer.
func (u *UI) clientState(r *http.Request, c smart.Client, names map[string]string) string {
	switch c.Approval {
	case smart.ApprovalPending:
		return "waiting for approval"
	case smart.ApprovalApproved:
		if n := u.userName(r, c.ApprovedBy, names); n != "" {
			return "approved by " + n
		}
		return "approved"
	case smart.ApprovalRejected:
		return "rejected"
	case smart.ApprovalNotNeeded:
		return "no approval needed (terminology only)"
	case smart.ApprovalBreakGlass:
		return "registered outside approval (offline CLI, break glass)"
	case smart.ApprovalLegacy:
		return "registered before approvals existed: review it"
	}
	return "unusable (unknown state)"
}

func (u *UI) renderClients(w http.ResponseWriter, r *http.Request, status int, view clientsView) error {
	cs := u.console.Clients
	if cs == nil {
		return unavailable("Client administration")
	}
	view.Purposes = smart.Purposes
	list, err := cs.List(r.Context(), maxClients)
	if err != nil {
		return u.consoleErr(err)
	}
	reqs, err := cs.Requests(r.Context())
	if err != nil {
		return u.consoleErr(err)
	}
	waiting := map[string]time.Time{}
	for _, p := range reqs {
		waiting[p.Client.ID] = p.Request.Expires
	}
	names := map[string]string{}
	for _, c := range list {
		keys := "PKCE only (public)"
		switch {
		case c.JWKSURL != "":
			keys = "JWKS URL " + c.JWKSURL
		case len(c.JWKS) > 0:
			keys = "JWK Set uploaded"
		}
		row := clientRow{ID: c.ID, Name: c.Name, Type: string(c.Type), Keys: keys, Scopes: c.Scopes.String(), Purpose: c.Purpose,
			RedirectURIs: c.RedirectURIs, Created: c.Created, Disabled: c.Disabled, State: u.clientState(r, c, names)}
		if exp, ok := waiting[c.ID]; ok {
			row.Waiting = exp
		} else if c.Approval == smart.ApprovalPending && !c.Disabled {
			row.State = "waiting for approval: the request expired"
			row.MayRequest = true
		}
		view.Clients = append(view.Clients, row)
	}
	u.site.Render(w, r, status, "admin-clients", site.PageData{Title: "SMART clients", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

func (u *UI) adminRegisterClient(w http.ResponseWriter, r *http.Request) error {
	cs := u.console.Clients
	if cs == nil {
		return unavailable("Client administration")
	}
	p := r.PostForm
	f := clientForm{Name: strings.TrimSpace(p.Get("name")), Kind: p.Get("kind"), JWKS: strings.TrimSpace(p.Get("jwks")),
		JWKSURL: strings.TrimSpace(p.Get("jwks_url")), Scopes: strings.TrimSpace(p.Get("scopes")), Redirects: p.Get("redirect_uris"),
		Purpose: p.Get("purpose")}
	fail := func(msg string) error {
		return u.renderClients(w, r, http.StatusBadRequest, clientsView{Form: f, Error: msg})
	}
	if len(f.JWKS) > maxJWKSField {
		return fail("The key set is too large.")
	}
	if !smart.ValidPurpose(f.Purpose) || (f.Purpose != "" && f.Kind != "backend") {
		return fail("Choose a purpose of use from the list (backend services only).")
	}
	set, err := scope.ParseSet(f.Scopes)
	if err != nil || f.Scopes == "" {
		return fail("Enter the scopes the client may be granted, separated by spaces.")
	}
	var jwks []byte
	if f.JWKS != "" {
		jwks = []byte(f.JWKS)
	}
	var redirects []string
	for _, line := range strings.Split(f.Redirects, "\n") {
		if s := strings.TrimSpace(line); s != "" {
			redirects = append(redirects, s)
		}
	}
	actor := consoleAgent(r, site.ViewerFrom(r.Context()))
	var id string
	switch f.Kind {
	case "backend":
		id, err = cs.RegisterBackend(r.Context(), actor, smart.BackendRegistration{Name: f.Name, JWKS: jwks, JWKSURL: f.JWKSURL, Scopes: set, Purpose: f.Purpose})
	case "public", "confidential":
		id, err = cs.RegisterApp(r.Context(), actor, smart.AppRegistration{Name: f.Name, Public: f.Kind == "public", JWKS: jwks, JWKSURL: f.JWKSURL,
			RedirectURIs: redirects, Scopes: set})
	default:
		return fail("Choose the kind of client.")
	}
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, audit.ErrUnavailable):
		return u.consoleErr(err)
	case errors.Is(err, smart.ErrInvalidJWKS):
		return fail("The key set was refused: give one public JWK Set (JSON) or its https URL, not both, and no private keys.")
	case errors.Is(err, smart.ErrInvalidRedirectURI):
		return fail("A redirect URI was refused: use absolute https URLs (http only to a loopback host) or a private-use scheme, one per line.")
	case errors.Is(err, scope.ErrSyntax), errors.Is(err, scope.ErrTooLarge):
		return fail("The scopes were refused: backend clients take system/ scopes; apps take patient/, user/ and launch scopes.")
	default:
		u.log.InfoContext(r.Context(), "console: client registration refused", slog.String("request_id", requestID(r)), slog.String("error", err.Error()))
		return fail("The registration was refused: check the name (1 to 100 characters), the keys, the scopes and the redirect URIs.")
	}
	pending := smart.Client{Type: smart.ClientType(f.Kind), Scopes: set}.NeedsApproval() // as the registry decided
	return u.renderClients(w, r, http.StatusCreated, clientsView{Form: clientForm{Kind: "backend"}, Created: id, CreatedPending: pending})
}

func (u *UI) adminDisableClient(w http.ResponseWriter, r *http.Request) error {
	cs := u.console.Clients
	if cs == nil {
		return unavailable("Client administration")
	}
	err := cs.Disable(r.Context(), consoleAgent(r, site.ViewerFrom(r.Context())), r.PathValue("cid"))
	if errors.Is(err, smart.ErrNotFound) {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such client.", err)
	}
	if err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, "/admin/clients?done=disabled")
}

// adminRequestClientApproval puts pending client cid up for approval
// again (its request expired).
func (u *UI) adminRequestClientApproval(w http.ResponseWriter, r *http.Request) error {
	cs := u.console.Clients
	if cs == nil {
		return unavailable("Client administration")
	}
	if _, err := cs.RequestApproval(r.Context(), consoleAgent(r, site.ViewerFrom(r.Context())), r.PathValue("cid")); err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, "/admin/clients?done=requested")
}
