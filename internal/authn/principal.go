// Package authn establishes who is calling.
//
// A request carries either a bearer API token (service accounts, the
// import tool) or, once identity lands, a session or SMART access token.
// The result is a [Principal]; nothing downstream sees credentials.
//
// # Security invariants
//
//   - Tokens are 256-bit random secrets with a typed prefix; only a
//     keyed hash (HMAC-SHA256 under the auth-rows key, ADR 0022) is
//     stored, so whoever writes the database without the key cannot
//     make a row that matches a secret of their choosing. A fast hash is
//     right for high-entropy secrets: there is nothing to brute-force.
//     Tokens created before ADR 0022 keep their plain SHA-256; the store
//     accepts those only with the row MAC the upgrade gave them.
//     Lookups are by hash, so timing reveals nothing about stored
//     secrets.
//   - Secrets never appear in logs or errors; [Secret] redacts itself.
//   - Unknown, revoked and malformed tokens get the same answer.
package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage"
)

// Errors.
var (
	// ErrUnauthenticated means no valid credential: answer 401 with the
	// same message whatever the reason.
	ErrUnauthenticated = errors.New("authn: unauthenticated")
)

// Principal is an authenticated caller.
type Principal struct {
	Kind  Kind     // KindToken, KindSession, KindSMARTApp or KindSMARTClient
	ID    string   // token id, or the user id of a session (never a secret)
	Name  string   // a label chosen by the administrator, or the username
	Roles []string // e.g. "system"

	// MFA reports that a second factor was verified when the session
	// began. Always false for API tokens: they are service credentials,
	// not workforce accounts.
	MFA bool
	// SessionID is the session's public id ("" for API tokens).
	SessionID string

	// Scopes are the SMART scopes of an OAuth access token; nil for
	// other credentials. They only narrow what the principal may do.
	Scopes *scope.Set

	// Purpose is the v3 PurposeOfUse a principal acts under when it is
	// fixed by registration rather than by roles: a SMART Backend
	// Services client's registered purpose (HPAYMT, HRESCH, ...), set
	// on the principal a bulk export runs as. "" means the roles'
	// purpose (authz.PurposeOf).
	Purpose string

	// SMART App Launch tokens (Kind "smart-app") only: the app's
	// client_id, the user's FHIR resource ("Practitioner/<id>" or
	// "Patient/<id>") and the launch patient id, "" without patient
	// context.
	Client   string
	FHIRUser string
	Patient  string
}

// Kind is the kind of credential a Principal authenticated with.
type Kind string

// The kinds of principal.
const (
	// KindToken is an API token (a service credential, never MFA).
	KindToken Kind = "token"
	// KindSession is a workforce or patient session from sign-in.
	KindSession Kind = "session"
	// KindSMARTApp is a SMART App Launch access token's principal: it acts
	// for the user who approved the app (ID is the user's id), within the
	// token's scopes.
	KindSMARTApp Kind = "smart-app"
	// KindSMARTClient is a SMART Backend Services client
	// (client_credentials): ID is the client id.
	KindSMARTClient Kind = "smart-client"
)

// TokenPrefix marks phivault API tokens so secret scanners can find them.
const TokenPrefix = "pvt_"

// tokenBytes is 256 bits of entropy (NIST SP 800-63B §5.1.1 asks at
// least 112 for look-up secrets; 256 leaves no doubt).
const tokenBytes = 32

// maxTokenLen bounds what we hash from untrusted headers.
const maxTokenLen = 256

// Secret is a bearer token in clear; it redacts itself in logs.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String redacts.
func (Secret) String() string { return "[redacted]" }

// GoString redacts (%#v would otherwise print the string itself).
func (Secret) GoString() string { return "authn.Secret([redacted])" }

// MarshalJSON redacts, so encoding a struct that holds a Secret cannot
// leak it.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the secret, for printing it once to its owner.
func (s Secret) Reveal() string { return string(s) }

// Hasher computes keyed lookup hashes of secrets; keys.AuthRowKey
// implements it.
type Hasher interface {
	LookupHash(kind, secret string) []byte
}

// LookupAPIToken is the lookup-hash kind of API token secrets.
const LookupAPIToken = "api-token"

// NewKeyedToken creates a token whose stored hash is keyed by h: the
// secret to hand out once, and the record to store. Every token the
// application creates is made so.
func NewKeyedToken(h Hasher, name string, roles []string, now time.Time) (Secret, storage.APIToken, error) {
	if h == nil {
		return "", storage.APIToken{}, errors.New("creating token: no lookup key")
	}
	secret, t, err := NewToken(name, roles, now)
	if err != nil {
		return "", storage.APIToken{}, err
	}
	t.Hash, t.HashKind = h.LookupHash(LookupAPIToken, secret.Reveal()), storage.HashHMAC
	return secret, t, nil
}

// NewToken creates a token with a plain SHA-256 hash, the form of
// tokens before ADR 0022: a store with row authentication refuses to
// store it. Use [NewKeyedToken].
func NewToken(name string, roles []string, now time.Time) (Secret, storage.APIToken, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", storage.APIToken{}, fmt.Errorf("generating token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", storage.APIToken{}, fmt.Errorf("generating token id: %w", err)
	}
	t := storage.APIToken{ID: "tok-" + base64.RawURLEncoding.EncodeToString(idb[:]), Name: name, Hash: HashToken(secret), HashKind: storage.HashSHA256, Roles: roles, Created: now.UTC()}
	return Secret(secret), t, nil
}

// HashToken is the plain SHA-256 of a secret: the stored form of tokens
// created before ADR 0022, and of enrolment links.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// TokenStore finds tokens by hash; it returns an error wrapping
// storage.ErrNotFound when there is none.
type TokenStore interface {
	TokenByHash(ctx context.Context, hash []byte) (storage.APIToken, error)
}

// Authenticator turns credentials into principals.
type Authenticator struct {
	tokens TokenStore
	now    func() time.Time
	hasher Hasher // nil: plain SHA-256 only (tests of this package)

	mu    sync.Mutex
	cache map[string]cachedToken // key: token hash
	// hits and misses count the cache's answers (TokenCacheStats).
	hits, misses atomic.Uint64
}

type cachedToken struct {
	p       Principal
	expires time.Time
}

// Token lookups are cached briefly: every API request authenticates, and
// a database round trip per request is a tenth of a read's cost. A
// revoked token therefore stops working within tokenCacheTTL.
const (
	tokenCacheTTL  = time.Second
	tokenCacheSize = 10000
)

// AuthOption adjusts [NewAuthenticator].
type AuthOption func(*Authenticator)

// WithHasher makes the Authenticator look tokens up by their keyed hash
// first, and accept a plain SHA-256 hash only on a row stored with that
// kind (created before ADR 0022; the store checks the row's MAC). The
// application always sets it.
func WithHasher(h Hasher) AuthOption { return func(a *Authenticator) { a.hasher = h } }

// NewAuthenticator returns an Authenticator over tokens; now is the clock
// (time.Now when nil).
func NewAuthenticator(tokens TokenStore, now func() time.Time, opts ...AuthOption) *Authenticator {
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{tokens: tokens, now: now, cache: make(map[string]cachedToken)}
	for _, o := range opts {
		o(a)
	}
	return a
}

// TokenCacheStats returns how many bearer tokens the cache answered
// (hits) and how many were looked up in the store (misses) since the
// Authenticator was made. Safe for concurrent use.
func (a *Authenticator) TokenCacheStats() (hits, misses uint64) {
	return a.hits.Load(), a.misses.Load()
}

// lookup finds the token of secret tok: by its keyed hash, then by its
// plain SHA-256 on a row of that kind.
func (a *Authenticator) lookup(ctx context.Context, tok string) (storage.APIToken, error) {
	if a.hasher != nil {
		t, err := a.tokens.TokenByHash(ctx, a.hasher.LookupHash(LookupAPIToken, tok))
		if err == nil {
			if t.HashKind != storage.HashHMAC {
				return storage.APIToken{}, ErrUnauthenticated
			}
			return t, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return storage.APIToken{}, err
		}
	}
	t, err := a.tokens.TokenByHash(ctx, HashToken(tok))
	if err != nil {
		return storage.APIToken{}, err
	}
	if t.HashKind != storage.HashSHA256 && (a.hasher != nil || t.HashKind != "") {
		return storage.APIToken{}, ErrUnauthenticated
	}
	return t, nil
}

// Bearer authenticates an "Authorization" header value. Every failure is
// ErrUnauthenticated; a storage outage is returned wrapped as is.
func (a *Authenticator) Bearer(ctx context.Context, header string) (Principal, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, ErrUnauthenticated
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > maxTokenLen || !strings.HasPrefix(tok, TokenPrefix) {
		return Principal{}, ErrUnauthenticated
	}
	hash := HashToken(tok) // the cache key; the cache is in memory only
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[string(hash)]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		a.hits.Add(1)
		return c.p, nil
	}
	a.misses.Add(1)
	t, err := a.lookup(ctx, tok)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, ErrUnauthenticated) {
			return Principal{}, ErrUnauthenticated
		}
		return Principal{}, fmt.Errorf("looking up token: %w", err)
	}
	if t.Revoked {
		return Principal{}, ErrUnauthenticated
	}
	p := Principal{Kind: KindToken, ID: t.ID, Name: t.Name, Roles: t.Roles}
	a.mu.Lock()
	if len(a.cache) >= tokenCacheSize {
		clear(a.cache)
	}
	a.cache[string(hash)] = cachedToken{p: p, expires: now.Add(tokenCacheTTL)}
	a.mu.Unlock()
	return p, nil
}
