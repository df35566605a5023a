package portal

import "net/http"

// Routes registers the patient portal's pages.
func (u *UI) Routes(mux *http.ServeMux) {
	mux.Handle("GET /portal", u.site.Handle(u.portal(u.portalRecord)))
	mux.Handle("GET /portal/access", u.site.Handle(u.portal(u.portalAccess)))
	mux.Handle("GET /portal/access/{id}/report", u.site.Handle(u.portal(u.reportForm)))
	mux.Handle("POST /portal/access/{id}/report", u.site.Handle(u.portalForm(u.reportSubmit)))
	mux.Handle("GET /portal/consent", u.site.Handle(u.portal(u.consentPage)))
	mux.Handle("POST /portal/consent", u.site.Handle(u.portalForm(u.consentSubmit)))
	mux.Handle("GET /portal/download", u.site.Handle(u.portal(u.downloadPage)))
	mux.Handle("GET /portal/download/record.json", u.site.Handle(u.portal(u.downloadBundle)))
	mux.Handle("GET /portal/download/record.pdf", u.site.Handle(u.portal(u.recordPDF)))
	mux.Handle("GET /portal/summary", u.site.Handle(u.portal(u.summaryPage)))
	mux.Handle("GET /portal/access/export", u.site.Handle(u.portal(u.accessExport)))

	// Privacy office (portal_reports.go).
	mux.Handle("GET /privacy/reports", u.site.Handle(u.privacy(u.reportsPage)))
	mux.Handle("POST /privacy/reports/{rid}/close", u.site.Handle(u.privacyForm(u.reportClose)))
	mux.Handle("GET /portal/corrections", u.site.Handle(u.portal(u.correctionsPage)))
	mux.Handle("POST /portal/corrections", u.site.Handle(u.portalForm(u.correctionSubmit)))
	mux.Handle("GET /privacy/corrections", u.site.Handle(u.privacy(u.correctionsQueue)))
	mux.Handle("POST /privacy/corrections/{aid}/decide", u.site.Handle(u.privacyForm(u.correctionDecide)))
	mux.Handle("GET /privacy/lookup", u.site.Handle(u.privacy(u.lookupPage)))
	mux.Handle("POST /privacy/lookup", u.site.Handle(u.privacyForm(u.lookupSubmit)))
}
