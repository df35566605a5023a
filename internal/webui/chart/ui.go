// Package chart is the clinical staff's pages: patient search, the
// chart, adding a note or a measurement, and break-the-glass. Every page
// needs a clinical role with a verified second factor (site.Clinical);
// every record access goes through the record service with the
// viewer's authorization guard. It gets the record service, the
// authorizer and the break-glass service, and nothing of the keys or
// the consoles.
package chart

import (
	"io"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/site"
)

// Options configures a [UI]. Site and Record are required.
type Options struct {
	Site   *site.Site
	Record *record.Service
	// Authz reads the viewer's break-the-glass grants for the chart's
	// banner; nil shows none.
	Authz *authz.Authorizer
	// BreakGlass opens emergency grants from the "no treatment
	// relationship" page; without it that form answers 503.
	BreakGlass *authz.BreakGlass
	// Corrections lists the patient's correction requests for the care
	// team (privacy.Amendments); nil leaves them out of the chart.
	Corrections Corrections
	Now         func() time.Time // default time.Now
	Rand        io.Reader        // search ids; default crypto/rand
}

// UI is the staff chart's pages. It is safe for concurrent use.
type UI struct {
	site     *site.Site
	rec      *record.Service
	authz    *authz.Authorizer
	glass    *authz.BreakGlass
	corr     Corrections
	now      func() time.Time
	rand     io.Reader
	searches *searchStore
	recent   *recentStore
	locates  *locateLimits
}

// New returns the staff chart's pages.
func New(o Options) *UI {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &UI{site: o.Site, rec: o.Record, authz: o.Authz, glass: o.BreakGlass, corr: o.Corrections, now: o.Now, rand: o.Rand, searches: newSearchStore(o.Now), recent: newRecentStore(), locates: newLocateLimits(o.Now)}
}

// Routes registers the patient search and chart pages on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	s := u.site
	mux.Handle("GET /patients", s.Handle(s.Clinical(u.searchForm)))
	mux.Handle("POST /patients/search", s.Handle(s.ClinicalForm(u.searchSubmit)))
	mux.Handle("GET /patients/search/{sid}", s.Handle(s.Clinical(u.searchResults)))
	mux.Handle("GET /patients/{id}", s.Handle(s.Clinical(u.chartPage)))
	mux.Handle("GET /patients/{id}/older/{section}", s.Handle(s.Clinical(u.olderPage)))
	mux.Handle("GET /patients/{id}/documents/{did}/content/{n}", s.Handle(s.Clinical(u.documentContent)))
	mux.Handle("POST /patients/{id}/notes", s.Handle(s.ClinicalForm(u.addNote)))
	mux.Handle("POST /patients/{id}/notes/{nid}", s.Handle(s.ClinicalForm(u.editDraft)))
	mux.Handle("POST /patients/{id}/notes/{nid}/sign", s.Handle(s.ClinicalForm(u.signNote)))
	mux.Handle("POST /patients/{id}/notes/{nid}/addenda", s.Handle(s.ClinicalForm(u.addAddendum)))
	mux.Handle("POST /patients/{id}/problems", s.Handle(s.ClinicalForm(u.addProblem)))
	mux.Handle("POST /patients/{id}/problems/{cid}/resolve", s.Handle(s.ClinicalForm(u.resolveProblem)))
	mux.Handle("POST /patients/{id}/observations", s.Handle(s.ClinicalForm(u.addObservation)))
	mux.Handle("POST /patients/{id}/break-glass", s.Handle(s.ClinicalForm(u.breakGlass)))
}

// ForgetSession drops the saved searches of a session that ended
// (sign-out, revocation): they are bound to it.
func (u *UI) ForgetSession(sessionID string) { u.searches.dropSession(sessionID) }
