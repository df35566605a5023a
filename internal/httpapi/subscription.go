package httpapi

import (
	"net/http"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/subscription"
)

// WebsocketPath is where the R4 websocket channel of Subscriptions is
// served (advertised in the CapabilityStatement, capabilitystatement-
// websocket extension).
const WebsocketPath = "/fhir/$subscription-websocket"

// subscriptionRoutes mounts the websocket channel (package
// subscription): the request authenticated as every /fhir request
// (bearer or session, the MFA gate), and the hub binds only the
// principal's own subscriptions. Without a hub it answers 404 as an
// unknown route.
func (s *Server) subscriptionRoutes(mux *http.ServeMux) {
	if s.subs == nil {
		return
	}
	mux.Handle("GET "+WebsocketPath, s.subs.Handler(func(r *http.Request) (authn.Principal, bool) {
		return PrincipalFrom(r.Context())
	}))
}

// hub is what the websocket route needs of the subscription service.
type hub interface {
	Handler(principal subscription.Principal) http.Handler
}
