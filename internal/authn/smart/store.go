package smart

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// ClientStore holds registered clients.
type ClientStore interface {
	// CreateClient stores a new client; ErrExists if the id is taken.
	CreateClient(ctx context.Context, c Client) error
	// Client returns the client with this id, or an error wrapping
	// ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
}

// ReplayStore remembers the jti of every accepted assertion.
type ReplayStore interface {
	// UseJTI records (clientID, jti) until expires and returns an error
	// wrapping ErrReplay if that pair is already recorded and has not
	// expired at now. It may delete records that expired before now.
	UseJTI(ctx context.Context, clientID, jti string, expires, now time.Time) error
}

// TokenStore holds issued access tokens by the SHA-256 of their secret.
type TokenStore interface {
	// PutToken stores a new token. It may delete tokens that expired
	// before t.Issued.
	PutToken(ctx context.Context, t Token) error
	// TokenByHash returns the token with this hash, or an error wrapping
	// ErrNotFound.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// RevokeToken marks the token revoked; an error wrapping ErrNotFound
	// if there is none.
	RevokeToken(ctx context.Context, hash []byte) error
}

// Store is everything the Server needs; sqldb implements it.
type Store interface {
	ClientStore
	ReplayStore
	TokenStore
}

// Token is the stored form of an access token (never the secret).
type Token struct {
	Hash     []byte // SHA-256 of the secret
	ClientID string
	Scopes   scope.Set
	Issued   time.Time
	Expires  time.Time
	Revoked  bool

	// Authorization is the id of the App Launch authorization the token
	// was issued from, "" for Backend Services.
	Authorization string
	// Launch is that authorization as read with the token (nil for
	// Backend Services). A revoked authorization revokes the token.
	Launch *Authorization
}

// Auditor appends an audit event durably (the audit batcher). An error
// means the event is not recorded: the request must fail.
type Auditor interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Audit actions of this package. ActionTokenCreate comes from package
// audit; the others belong there too (reported for review).
const (
	ActionTokenRevoke     audit.Action = "token-revoke"
	ActionTokenIntrospect audit.Action = "token-introspect"
	// ActionAuthorize: a user approved or denied an app at the consent
	// screen, or an authorize request was refused.
	ActionAuthorize audit.Action = "oauth-authorize"
	// ActionTokenRefresh: a refresh token was exchanged (or refused).
	ActionTokenRefresh audit.Action = "token-refresh"
	// ActionFamilyRevoke: an authorization and every token issued from
	// it were revoked because a spent code or refresh token came back.
	ActionFamilyRevoke audit.Action = "token-family-revoke"
)
