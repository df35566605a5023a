// Package desk is the front desk's pages: finding a patient by name and
// birth date, registering a patient (a new Patient), editing
// demographics, and assigning a physician or nurse to a patient's care
// team (a new CareTeam), so that a newly invited clinician is given
// their patients without the CLI.
//
// # Security invariants
//
//   - Every page needs the front-desk role with a verified second
//     factor; every form the session's CSRF token (site.Form).
//   - Every record access goes through the record service with the
//     viewer's own authorization guard: the policies decide
//     (front-desk-demographics: Patients; front-desk-registration:
//     creating CareTeams), every read and write is audited, and the
//     front desk sees Patients masked (minimum necessary: no SSN, no
//     narrative), while its updates keep what the mask hides (ADR 0033).
//   - A care-team assignment is a CareTeam create audited with the
//     patient, so the patient sees it in "Who accessed my record"; the
//     clinician is chosen among enabled physician and nurse accounts
//     linked to a Practitioner, by account id, resolved on the server.
//   - No search term is in a URL: searches are POSTed and answered in
//     the response.
package desk

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/site"
)

// Options configures a [UI]. Site, Record and Users are required.
type Options struct {
	Site   *site.Site
	Record *record.Service
	// Users lists the clinicians a patient can be assigned to.
	Users identity.Directory
	Now   func() time.Time // default time.Now
	Rand  io.Reader        // medical record numbers; default crypto/rand
}

// UI is the front desk's pages. It is safe for concurrent use.
type UI struct {
	site  *site.Site
	rec   *record.Service
	users identity.Directory
	now   func() time.Time
	rand  io.Reader
}

// New returns the front desk's pages.
func New(o Options) *UI {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &UI{site: o.Site, rec: o.Record, users: o.Users, now: o.Now, rand: o.Rand}
}

// Routes registers the front desk's pages on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	s := u.site
	mux.Handle("GET /desk", s.Handle(s.SignedIn(frontDesk(u.home))))
	mux.Handle("POST /desk/search", s.Handle(s.Form(frontDesk(u.search))))
	mux.Handle("GET /desk/register", s.Handle(s.SignedIn(frontDesk(u.registerForm))))
	mux.Handle("POST /desk/register", s.Handle(s.Form(frontDesk(u.register))))
	mux.Handle("GET /desk/patients/{id}", s.Handle(s.SignedIn(frontDesk(u.patientPage))))
	mux.Handle("POST /desk/patients/{id}", s.Handle(s.Form(frontDesk(u.saveDemographics))))
	mux.Handle("POST /desk/patients/{id}/care-team", s.Handle(s.Form(frontDesk(u.assign))))
}

// frontDesk runs h for a front-desk viewer with a verified second
// factor; others get a plain 403 page.
func frontDesk(h site.HandlerFunc) site.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := site.ViewerFrom(r.Context())
		if v == nil || !v.FrontDesk() {
			return site.PageErr(http.StatusForbidden, "Not available to your role",
				"Registration is available to the front desk only.", errors.New("non-front-desk role at a desk page"))
		}
		return h(w, r)
	}
}
