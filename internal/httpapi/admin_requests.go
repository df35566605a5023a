package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/web"
)

// The two-person rule's queue in the admin API: pending role grants and
// SMART client approvals, listed, approved and rejected by a second
// security administrator (ADR 0018, ADR 0020).

// clientJSON is a SMART client as an approver reviews it: public keys
// are summarised, never the JWK Set itself.
type clientJSON struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Scopes       string    `json:"scopes"`
	Keys         string    `json:"keys"` // "jwks", the JWKS URL, or "none" (public app)
	RedirectURIs []string  `json:"redirect_uris,omitempty"`
	Approval     string    `json:"approval"`
	RegisteredBy string    `json:"registered_by,omitempty"`
	ApprovedBy   string    `json:"approved_by,omitempty"`
	Disabled     bool      `json:"disabled"`
	Created      time.Time `json:"created"`
}

func toClientJSON(c smart.Client) clientJSON {
	keys := "none"
	switch {
	case c.JWKSURL != "":
		keys = c.JWKSURL
	case len(c.JWKS) > 0:
		keys = "jwks"
	}
	return clientJSON{ID: c.ID, Name: c.Name, Type: string(c.Type), Scopes: c.Scopes.String(), Keys: keys, RedirectURIs: c.RedirectURIs,
		Approval: string(c.Approval), RegisteredBy: c.RegisteredBy, ApprovedBy: c.ApprovedBy, Disabled: c.Disabled, Created: c.Created}
}

// clientRequestJSON is a pending client approval request.
type clientRequestJSON struct {
	ID          string     `json:"id"`
	Client      clientJSON `json:"client"`
	RequestedBy string     `json:"requested_by"`
	Created     time.Time  `json:"created"`
	Expires     time.Time  `json:"expires"`
}

// requests lists the pending role requests and client requests.
func (a *adminAPI) requests(w http.ResponseWriter, r *http.Request) error {
	rs, err := a.accounts.Requests(r.Context())
	if err != nil {
		return err
	}
	out := make([]*requestJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, toRequestJSON(x))
	}
	cs := make([]clientRequestJSON, 0)
	if a.s.clients != nil {
		ps, err := a.s.clients.Requests(r.Context())
		if err != nil {
			return err
		}
		for _, p := range ps {
			cs = append(cs, clientRequestJSON{ID: p.Request.ID, Client: toClientJSON(p.Client), RequestedBy: p.Request.RequestedBy,
				Created: p.Request.Created, Expires: p.Request.Expires})
		}
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"requests": out, "client_requests": cs})
	return nil
}

// decide approves (200 with the account, or the client) or rejects
// (204) a request: a client request by its "rqc_" id.
func (a *adminAPI) decide(approve bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if strings.HasPrefix(id, smart.ClientRequestPrefix) {
			return a.decideClient(w, r, id, approve)
		}
		if !approve {
			if err := a.accounts.Reject(r.Context(), actor(r), id); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		u, err := a.accounts.Approve(r.Context(), actor(r), id)
		if err != nil {
			return err
		}
		writeAPIJSON(w, http.StatusOK, toJSON(u))
		return nil
	}
}

// decideClient approves (200 with the client) or rejects (204) client
// request id.
func (a *adminAPI) decideClient(w http.ResponseWriter, r *http.Request, id string, approve bool) error {
	cs := a.s.clients
	if cs == nil {
		return web.New(http.StatusServiceUnavailable, "client administration is not available", errors.New("no ClientApprovals service configured"))
	}
	if !approve {
		if err := cs.Reject(r.Context(), actor(r), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	c, err := cs.Approve(r.Context(), actor(r), id)
	if err != nil {
		return err
	}
	writeAPIJSON(w, http.StatusOK, toClientJSON(c))
	return nil
}
