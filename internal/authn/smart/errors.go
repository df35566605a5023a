package smart

import (
	"errors"
	"net/http"

	"github.com/phivault/phivault/internal/web"
)

// Errors. The OAuth error sentinels are what the endpoints answer (RFC
// 6749 §5.2); callers match them with errors.Is.
var (
	// ErrInvalidRequest: a parameter is missing, repeated or malformed.
	ErrInvalidRequest = errors.New("invalid_request")
	// ErrInvalidClient: client authentication failed. Answer 401.
	ErrInvalidClient = errors.New("invalid_client")
	// ErrInvalidGrant: the grant is invalid.
	ErrInvalidGrant = errors.New("invalid_grant")
	// ErrInvalidScope: no requested scope can be granted.
	ErrInvalidScope = errors.New("invalid_scope")
	// ErrUnauthorizedClient: this client may not use this grant type.
	ErrUnauthorizedClient = errors.New("unauthorized_client")
	// ErrUnsupportedGrantType: the grant type is not supported.
	ErrUnsupportedGrantType = errors.New("unsupported_grant_type")

	// ErrInvalidToken means an access token is unknown, malformed,
	// expired or revoked, or its client is disabled: answer 401 with the
	// same message whatever the reason.
	ErrInvalidToken = errors.New("smart: invalid access token")
	// ErrInvalidJWKS means a JWK Set or JWKS URL was refused at
	// registration or after a fetch; the text says why.
	ErrInvalidJWKS = errors.New("smart: invalid JWK Set")
	// ErrInvalidRedirectURI means a redirect URI was refused at
	// registration; the text says why.
	ErrInvalidRedirectURI = errors.New("smart: invalid redirect URI")
	// ErrNotFound is returned by a Store for an unknown client or token.
	ErrNotFound = errors.New("smart: not found")
	// ErrReplay is returned by ReplayStore.UseJTI for a jti already used.
	ErrReplay = errors.New("smart: assertion replayed")
	// ErrExists is returned by ClientStore.CreateClient for a duplicate id.
	ErrExists = errors.New("smart: client exists")
	// ErrCodeUsed is returned by LaunchStore.UseCode for a code already
	// exchanged: revoke its authorization (RFC 6749 §4.1.2).
	ErrCodeUsed = errors.New("smart: authorization code already used")
	// ErrRefreshSpent is returned by LaunchStore.RotateRefreshToken for
	// a refresh token already rotated: revoke its authorization.
	ErrRefreshSpent = errors.New("smart: refresh token already used")
	// ErrFlow means a sealed authorize flow is malformed, expired, or
	// bound to another browser: show an error page (400) and ask the
	// user to start again from the app.
	ErrFlow = errors.New("smart: the authorization request expired or is invalid; start again from the app")

	// Client approval (two-person rule, approval.go). Their texts are
	// written for an administrator: the admin API and the console show
	// them as they are.

	// ErrSelfApproval: the approver registered the client or requested
	// its approval. 403.
	ErrSelfApproval = errors.New("separation of duties: you cannot approve a client that you registered or whose approval you requested; ask another security administrator")
	// ErrApprovalPending: the client has a pending request already. 409.
	ErrApprovalPending = errors.New("an approval request for this client is already waiting: approve or reject it first")
	// ErrApprovalStale: the request expired, or the client no longer
	// waits for approval; it can only be rejected. 409.
	ErrApprovalStale = errors.New("the request expired or the client no longer waits for approval: request approval again if it is still needed")
	// ErrNotPending: approval was requested for a client that does not
	// wait for one (approved, rejected, or needing none). 409.
	ErrNotPending = errors.New("this client does not wait for approval")
	// ErrRequester: a client that needs approval was registered, or its
	// approval requested, by no administrator's account. 403.
	ErrRequester = errors.New("a client that reaches patient data is registered by a security administrator's account, and approved by another")

	// errServer marks failures of phivault itself (storage, audit).
	errServer = errors.New("server_error")
)

// oauthError is an RFC 6749 §5.2 error: code and public description for
// the client, cause for the log only.
type oauthError struct {
	kind  error  // one of the sentinels above
	desc  string // safe to show the client
	cause error  // internal; may be nil
}

func (e *oauthError) Error() string {
	s := e.kind.Error() + ": " + e.desc
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *oauthError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func oauthErr(kind error, desc string, cause error) error {
	return &oauthError{kind: kind, desc: desc, cause: cause}
}

// httpError maps an error to the answer of the OAuth endpoints: its
// HTTP status, RFC 6749 §5.2 code and public description (web.OAuth
// renders it); anything but an OAuth error is 500 server_error.
func httpError(err error) *web.Error {
	var oe *oauthError
	desc := "internal error"
	if errors.As(err, &oe) {
		desc = oe.desc
	}
	e := &web.Error{Msg: desc, Err: err}
	switch {
	case errors.Is(err, ErrInvalidClient):
		e.Status, e.Code = http.StatusUnauthorized, "invalid_client"
	case errors.Is(err, ErrInvalidRequest):
		e.Status, e.Code = http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrInvalidGrant):
		e.Status, e.Code = http.StatusBadRequest, "invalid_grant"
	case errors.Is(err, ErrInvalidScope):
		e.Status, e.Code = http.StatusBadRequest, "invalid_scope"
	case errors.Is(err, ErrUnauthorizedClient):
		e.Status, e.Code = http.StatusBadRequest, "unauthorized_client"
	case errors.Is(err, ErrUnsupportedGrantType):
		e.Status, e.Code = http.StatusBadRequest, "unsupported_grant_type"
	default:
		e.Status, e.Code, e.Msg = http.StatusInternalServerError, "server_error", "internal error"
	}
	return e
}
