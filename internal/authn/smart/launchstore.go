package smart

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Authorization is one consent given by a user to an app: the family
// of every code, access token and refresh token issued from it.
// Revoking it revokes them all (code reuse, refresh-token reuse).
type Authorization struct {
	ID       string
	ClientID string
	UserID   string
	FHIRUser string   // "Practitioner/<id>", "Patient/<id>" or ""
	Roles    []string // the user's identity roles at consent
	Patient  string   // launch patient id ("" without patient context)
	Scopes   scope.Set
	Created  time.Time
	Expires  time.Time // no refresh token outlives it
	Revoked  bool
}

// Code is the stored form of an authorization code (never the secret).
type Code struct {
	Hash          []byte // SHA-256 of the code
	Authorization string // Authorization.ID
	RedirectURI   string
	Challenge     string // PKCE S256 code_challenge
	Nonce         string // OpenID Connect nonce, "" if none
	Expires       time.Time
	Used          bool
}

// RefreshToken is the stored form of a refresh token.
type RefreshToken struct {
	Hash          []byte // SHA-256 of the secret
	Authorization string
	Issued        time.Time
	Expires       time.Time
	Spent         bool // rotated: presenting it again revokes the family
}

// SigningKey is the id_token signing key as stored: sealed by the
// keyring, never in clear.
type SigningKey struct {
	KID     string
	Alg     string
	Sealed  string
	Created time.Time
}

// LaunchStore holds what App Launch needs beyond Store. sqldb
// implements it on both drivers.
type LaunchStore interface {
	// CreateAuthorization stores a and its first code in one
	// transaction.
	CreateAuthorization(ctx context.Context, a Authorization, c Code) error
	// UseCode marks the code with this hash used and returns it with its
	// authorization. If it was already used it returns them with an
	// error wrapping ErrCodeUsed (the caller revokes the family);
	// unknown codes give ErrNotFound. Exactly one caller ever gets a
	// code without ErrCodeUsed, whatever the concurrency.
	UseCode(ctx context.Context, hash []byte) (Code, Authorization, error)
	// Authorization returns the authorization with this id, or
	// ErrNotFound.
	Authorization(ctx context.Context, id string) (Authorization, error)
	// RevokeAuthorization marks the authorization revoked, and with it
	// every access and refresh token issued from it.
	RevokeAuthorization(ctx context.Context, id string) error
	// PutRefreshToken stores a new refresh token.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshToken returns the refresh token with this hash, or
	// ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, error)
	// RotateRefreshToken marks old spent and stores next in one
	// transaction, only if old was not spent yet; otherwise it returns an
	// error wrapping ErrRefreshSpent and stores nothing.
	RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken) error
	// SigningKey returns the id_token signing key, or ErrNotFound.
	SigningKey(ctx context.Context) (SigningKey, error)
	// PutSigningKey stores the signing key unless one exists (ErrExists:
	// another process won the race; read theirs).
	PutSigningKey(ctx context.Context, k SigningKey) error
}

// Sealer seals secrets at rest ([keys.Keyring]): the id_token signing
// key and the authorize flow state.
type Sealer interface {
	SealToken(purpose string, data []byte) (string, error)
	OpenToken(purpose, token string) ([]byte, error)
}
