// Package portal is the patient portal (a patient's own record, who
// accessed it and its accounting as a file, consent, download, the
// printable summary and its PDF, reporting an access, asking for a
// correction) and the privacy office's pages (the reports, "Find a
// person", the correction requests' queue). A patient's own id comes
// from the account's FHIR user link, never from the request. It gets
// the record service, the directory, the audit index and the privacy
// services (reports, correction requests, trail), and never the keys or
// the consoles. Every file is recorded (privacy.Trail) before a byte of
// it is written.
package portal

import (
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/site"
)

// Options configures a [UI]. Site, Record and Users are required.
type Options struct {
	Site   *site.Site
	Record *record.Service
	Users  identity.Directory
	// Authz names the organisation of a practitioner in the access list;
	// nil leaves it out.
	Authz *authz.Authorizer
	// Access is the searchable audit log behind "who accessed my
	// record"; nil says it is not available.
	Access AccessLog
	// AuditLog gives the log's verifier key shown with the access list.
	AuditLog site.AuditLog
	// Reports is the access reports' service (privacy.Reports); nil
	// answers 503 on the report pages.
	Reports Reports
	// Trail records staff lookups and exports (privacy.Trail); nil
	// answers 503 on the lookup page and offers no export.
	Trail Trail
	// Amendments is the correction requests' service
	// (privacy.Amendments); nil answers 503 on their pages.
	Amendments Amendments
	// Reviewing marks the accesses the privacy office is reviewing (a
	// confirmed monitoring alert); nil marks none.
	Reviewing Reviewing
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
}

// UI is the patient portal's pages. It is safe for concurrent use.
type UI struct {
	site      *site.Site
	rec       *record.Service
	users     identity.Directory
	authz     *authz.Authorizer
	access    AccessLog
	auditLog  site.AuditLog
	reports   Reports
	trail     Trail
	amend     Amendments
	reviewing Reviewing
	log       *slog.Logger
	now       func() time.Time
}

// New returns the patient portal's pages.
func New(o Options) *UI {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &UI{site: o.Site, rec: o.Record, users: o.Users, authz: o.Authz, access: o.Access, auditLog: o.AuditLog,
		reports: o.Reports, trail: o.Trail, amend: o.Amendments, reviewing: o.Reviewing, log: o.Logger, now: o.Now}
}
