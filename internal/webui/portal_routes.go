package webui

import "net/http"

// portalRoutes registers the patient portal's pages.
func (u *UI) portalRoutes(mux *http.ServeMux) {
	mux.Handle("GET /portal", u.handle(u.portal(u.portalRecord)))
	mux.Handle("GET /portal/access", u.handle(u.portal(u.portalAccess)))
}
