package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/web"
)

// The front ends httpapi mounts, each a package with only its own
// dependencies; what they need of this API (its authentication, the
// caller's audit identity, its JSON output) they get as functions.

// newSignin is the JSON sign-in API under /auth/ (package signin). Its
// requests authenticate as principal does, the refusals answered in
// that API's JSON form: 401 without a valid credential, 403 without the
// CSRF header.
func newSignin(s *Server, o Options) *signin.Handler {
	return signin.New(signin.Options{Login: o.Login, SSO: o.SSO, Logger: o.Logger,
		Principal: func(r *http.Request) (authn.Principal, error) {
			p, err := s.principal(r)
			switch {
			case errors.Is(err, errNoCredential):
				return authn.Principal{}, &web.Error{Status: http.StatusUnauthorized, Msg: "authentication required: log in", Err: err}
			case errors.Is(err, errCSRF):
				return authn.Principal{}, &web.Error{Status: http.StatusForbidden, Msg: "a cookie-authenticated request that changes state must carry the X-CSRF-Token header", Err: err}
			}
			return p, err
		}})
}

// newAuditAPI is the audit log's read side (package auditapi): /log,
// whose entry bundles authenticate as the FHIR API does (principal and
// phiGate, refusals answered by writeAuthnError), and the AuditEvent
// handlers of the FHIR API.
func newAuditAPI(s *Server, o Options) *auditapi.Handler {
	var fhirUser func(ctx context.Context, userID string) (string, error)
	if o.Accounts != nil {
		fhirUser = func(ctx context.Context, userID string) (string, error) {
			u, err := o.Accounts.Directory().ByID(ctx, userID)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(u.FHIRUser, "RelatedPerson/") && s.authz != nil {
				// A proxy reads the log as the patient its active grant
				// names (authz/proxy.go); none: no patient, refused.
				return s.authz.ProxyPatient(ctx, u.FHIRUser)
			}
			return u.FHIRUser, nil
		}
	}
	return auditapi.New(auditapi.Options{AuditLog: o.AuditLog, Log: o.Log, Recorder: o.LogAudit, Verifier: o.LogVerifier,
		BaseURL: o.BaseURL, Now: o.Now, FHIRUser: fhirUser, WriteJSON: writeJSON,
		Authenticate: func(w http.ResponseWriter, r *http.Request) (authn.Principal, bool) {
			p, err := s.principal(r)
			if err == nil {
				err = phiGate(p)
			}
			if err != nil {
				s.writeAuthnError(w, r, err)
				return authn.Principal{}, false
			}
			return p, true
		},
		Principal: func(r *http.Request) authn.Principal {
			p, _ := PrincipalFrom(r.Context())
			return p
		},
		Agent: func(r *http.Request) audit.Agent { return s.caller(r).Agent },
	})
}
