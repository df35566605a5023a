// Package console is the staff administration console (/admin):
// account administration for security admins, the break-the-glass
// review desk for privacy officers, the audit log for auditors, and the
// read-only policy and key pages. It gets the console's services, the
// keyring and the audit log's status, and nothing of the record
// service: it never reads a patient's record.
package console

import (
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/webui/site"
)

// Options configures a [UI]. Site and Users are required; a nil
// service makes its pages answer 503 (the role checks apply regardless).
type Options struct {
	Site     *site.Site
	Services Services
	Users    identity.Directory
	// AuditLog feeds the audit log status page.
	AuditLog site.AuditLog
	// Authz shows the loaded policy set (the policy page).
	Authz *authz.Authorizer
	// Keys and KeyScanner feed the key status page.
	Keys       *keys.Keyring
	KeyScanner KeyScanner
	// BaseURL is the server's public base URL, for invitation links;
	// empty uses https:// and the request's host.
	BaseURL string
	Logger  *slog.Logger
	Now     func() time.Time // dates the exports; default time.Now
}

// UI is the console's pages. It is safe for concurrent use.
type UI struct {
	site     *site.Site
	console  Services
	users    identity.Directory
	auditLog site.AuditLog
	authz    *authz.Authorizer
	keys     *keys.Keyring
	scanner  KeyScanner
	baseURL  string
	log      *slog.Logger
	now      func() time.Time
}

// New returns the console's pages.
func New(o Options) *UI {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &UI{site: o.Site, console: o.Services, users: o.Users, auditLog: o.AuditLog, authz: o.Authz,
		keys: o.Keys, scanner: o.KeyScanner, baseURL: o.BaseURL, log: o.Logger, now: o.Now}
}
