package smart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// AccessTokenPrefix marks phivault SMART access tokens so secret scanners
// can find them.
const AccessTokenPrefix = "pva_"

// accessTokenBytes is 256 bits of entropy (NIST SP 800-63B asks at least
// 112 bits for look-up secrets).
const accessTokenBytes = 32

// accessTokenLen is the exact length of a well-formed token.
var accessTokenLen = len(AccessTokenPrefix) + base64.RawURLEncoding.EncodedLen(accessTokenBytes)

// Grant is what a valid access token lets its bearer do.
type Grant struct {
	ClientID string
	Scopes   scope.Set
	Expires  time.Time

	// Launch is the App Launch authorization behind the token: the user
	// who approved it and the launch patient. Nil for Backend Services.
	Launch *Authorization
}

// tokens is the access-token store and validator: it issues and
// revokes opaque access tokens and validates bearer tokens through a
// cache of token and client lookups (see the package doc on revocation
// latency). Its mutex guards both caches.
type tokens struct {
	store    Store
	rand     io.Reader
	now      func() time.Time
	ttl      time.Duration // Options.AccessTokenTTL
	cacheTTL time.Duration // Options.TokenCacheTTL; negative: no cache

	mu      sync.RWMutex
	cache   map[[32]byte]cachedToken
	clients map[string]cachedClient // disabled flags, same lifetime as cache
}

func newTokens(store Store, opts Options) *tokens {
	return &tokens{store: store, rand: opts.Rand, now: opts.Now, ttl: opts.AccessTokenTTL, cacheTTL: opts.TokenCacheTTL,
		cache: map[[32]byte]cachedToken{}, clients: map[string]cachedClient{}}
}

// cachedClient is whether a client may no longer use its tokens
// (!Client.Active), as read at fetched.
type cachedClient struct {
	disabled bool
	fetched  time.Time
}

type cachedToken struct {
	tok      Token
	disabled bool // the client is disabled, or not approved (Client.Active)
	fetched  time.Time
}

// hashToken is the stored form: SHA-256 is right for a 256-bit random
// secret (nothing to brute-force) and makes lookups independent of the
// secret's bytes.
func hashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// issue creates, stores and returns a new access token.
func (ts *tokens) issue(ctx context.Context, clientID string, scopes scope.Set) (string, Token, error) {
	return ts.issueFor(ctx, clientID, scopes, "")
}

// issueFor issues an access token of the App Launch authorization
// authz ("" for Backend Services).
func (ts *tokens) issueFor(ctx context.Context, clientID string, scopes scope.Set, authz string) (string, Token, error) {
	var b [accessTokenBytes]byte
	if _, err := io.ReadFull(ts.rand, b[:]); err != nil {
		return "", Token{}, fmt.Errorf("generating access token: %w", err)
	}
	secret := AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := hashToken(secret)
	now := ts.now().UTC()
	t := Token{Hash: h[:], ClientID: clientID, Scopes: scopes, Issued: now, Expires: now.Add(ts.ttl), Authorization: authz}
	if err := ts.store.PutToken(ctx, t); err != nil {
		return "", Token{}, fmt.Errorf("storing access token: %w", err)
	}
	return secret, t, nil
}

// validate is [Server.ValidateAccessToken].
func (ts *tokens) validate(ctx context.Context, token string) (Grant, error) {
	if len(token) != accessTokenLen || token[:len(AccessTokenPrefix)] != AccessTokenPrefix {
		return Grant{}, ErrInvalidToken
	}
	h := hashToken(token)
	now := ts.now()
	ct, ok := ts.cached(h, now)
	if !ok {
		var err error
		ct, err = ts.lookup(ctx, h, now)
		if err != nil {
			return Grant{}, err
		}
	}
	if ct.tok.Revoked || ct.disabled || !now.Before(ct.tok.Expires) {
		return Grant{}, ErrInvalidToken
	}
	if ct.tok.Authorization != "" && (ct.tok.Launch == nil || ct.tok.Launch.Revoked) {
		return Grant{}, ErrInvalidToken
	}
	return Grant{ClientID: ct.tok.ClientID, Scopes: ct.tok.Scopes, Expires: ct.tok.Expires, Launch: ct.tok.Launch}, nil
}

func (ts *tokens) cached(h [32]byte, now time.Time) (cachedToken, bool) {
	if ts.cacheTTL < 0 {
		return cachedToken{}, false
	}
	ts.mu.RLock()
	ct, ok := ts.cache[h]
	ts.mu.RUnlock()
	if !ok || now.Sub(ct.fetched) >= ts.cacheTTL {
		return cachedToken{}, false
	}
	return ct, true
}

// lookup reads the token and its client from the store and caches them.
// Unknown tokens are not cached: they would let a caller fill the cache.
func (ts *tokens) lookup(ctx context.Context, h [32]byte, now time.Time) (cachedToken, error) {
	t, err := ts.store.TokenByHash(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return cachedToken{}, ErrInvalidToken
	}
	if err != nil {
		return cachedToken{}, fmt.Errorf("validating access token: %w", err)
	}
	disabled, err := ts.clientDisabled(ctx, t.ClientID, now)
	if err != nil {
		return cachedToken{}, err
	}
	ct := cachedToken{tok: t, disabled: disabled, fetched: now}
	if ts.cacheTTL >= 0 {
		ts.mu.Lock()
		if len(ts.cache) >= maxCachedTokens {
			ts.evictLocked(now)
		}
		ts.cache[h] = ct
		ts.mu.Unlock()
	}
	return ct, nil
}

// evictLocked drops stale entries, and everything if none was stale: a
// full cache only costs lookups, never correctness.
func (ts *tokens) evictLocked(now time.Time) {
	for k, v := range ts.cache {
		if now.Sub(v.fetched) >= ts.cacheTTL || !now.Before(v.tok.Expires) {
			delete(ts.cache, k)
		}
	}
	if len(ts.cache) >= maxCachedTokens {
		clear(ts.cache)
	}
}

// revoke revokes the token with hash h if it belongs to clientID. It
// reports whether a token was revoked.
func (ts *tokens) revoke(ctx context.Context, clientID, token string) (bool, error) {
	if len(token) != accessTokenLen || token[:len(AccessTokenPrefix)] != AccessTokenPrefix {
		return false, nil
	}
	h := hashToken(token)
	t, err := ts.store.TokenByHash(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoking access token: %w", err)
	}
	if t.ClientID != clientID {
		return false, nil // RFC 7009 §2.1: not this client's token
	}
	ts.mu.Lock()
	delete(ts.cache, h)
	ts.mu.Unlock()
	if err := ts.store.RevokeToken(ctx, h[:]); err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("revoking access token: %w", err)
	}
	ts.mu.Lock()
	delete(ts.cache, h) // again: a concurrent lookup may have cached it
	ts.mu.Unlock()
	return true, nil
}

// clientDisabled reports whether a client may no longer use its tokens
// (disabled, or not usable under the two-person rule: !Client.Active),
// cached for the token cache's lifetime: many tokens of one client then
// cost one client lookup. Disabling a client therefore takes effect
// within that time, as revoking a token does.
func (ts *tokens) clientDisabled(ctx context.Context, id string, now time.Time) (bool, error) {
	if ts.cacheTTL >= 0 {
		ts.mu.RLock()
		c, ok := ts.clients[id]
		ts.mu.RUnlock()
		if ok && now.Sub(c.fetched) < ts.cacheTTL {
			return c.disabled, nil
		}
	}
	c, err := ts.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, ErrInvalidToken
	}
	if err != nil {
		return false, fmt.Errorf("validating access token: %w", err)
	}
	if ts.cacheTTL >= 0 {
		ts.mu.Lock()
		if len(ts.clients) >= maxCachedTokens {
			clear(ts.clients)
		}
		ts.clients[id] = cachedClient{disabled: !c.Active(), fetched: now}
		ts.mu.Unlock()
	}
	return !c.Active(), nil
}

// forgetAuthorization drops the tokens of App Launch authorization id
// from the cache (its family was revoked).
func (ts *tokens) forgetAuthorization(id string) {
	ts.mu.Lock()
	for k, v := range ts.cache {
		if v.tok.Authorization == id {
			delete(ts.cache, k)
		}
	}
	ts.mu.Unlock()
}
