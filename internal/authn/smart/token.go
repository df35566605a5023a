package smart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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
func (s *Server) issue(ctx context.Context, clientID string, scopes scope.Set) (string, Token, error) {
	return s.issueFor(ctx, clientID, scopes, "")
}

// issueFor issues an access token of the App Launch authorization
// authz ("" for Backend Services).
func (s *Server) issueFor(ctx context.Context, clientID string, scopes scope.Set, authz string) (string, Token, error) {
	var b [accessTokenBytes]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", Token{}, fmt.Errorf("generating access token: %w", err)
	}
	secret := AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := hashToken(secret)
	now := s.opts.Now().UTC()
	t := Token{Hash: h[:], ClientID: clientID, Scopes: scopes, Issued: now, Expires: now.Add(s.opts.AccessTokenTTL), Authorization: authz}
	if err := s.store.PutToken(ctx, t); err != nil {
		return "", Token{}, fmt.Errorf("storing access token: %w", err)
	}
	return secret, t, nil
}

// ValidateAccessToken returns the grant of a bearer token. Every failure
// (malformed, unknown, expired, revoked, client disabled) returns an
// error wrapping ErrInvalidToken; a failing store returns its error
// instead, which must be answered 503, not 401. Lookups are cached for
// Options.TokenCacheTTL (see the package doc on revocation latency).
func (s *Server) ValidateAccessToken(ctx context.Context, token string) (Grant, error) {
	if len(token) != accessTokenLen || token[:len(AccessTokenPrefix)] != AccessTokenPrefix {
		return Grant{}, ErrInvalidToken
	}
	h := hashToken(token)
	now := s.opts.Now()
	ct, ok := s.cached(h, now)
	if !ok {
		var err error
		ct, err = s.lookup(ctx, h, now)
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

func (s *Server) cached(h [32]byte, now time.Time) (cachedToken, bool) {
	if s.opts.TokenCacheTTL < 0 {
		return cachedToken{}, false
	}
	s.mu.RLock()
	ct, ok := s.cache[h]
	s.mu.RUnlock()
	if !ok || now.Sub(ct.fetched) >= s.opts.TokenCacheTTL {
		return cachedToken{}, false
	}
	return ct, true
}

// lookup reads the token and its client from the store and caches them.
// Unknown tokens are not cached: they would let a caller fill the cache.
func (s *Server) lookup(ctx context.Context, h [32]byte, now time.Time) (cachedToken, error) {
	t, err := s.store.TokenByHash(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return cachedToken{}, ErrInvalidToken
	}
	if err != nil {
		return cachedToken{}, fmt.Errorf("validating access token: %w", err)
	}
	disabled, err := s.clientDisabled(ctx, t.ClientID, now)
	if err != nil {
		return cachedToken{}, err
	}
	ct := cachedToken{tok: t, disabled: disabled, fetched: now}
	if s.opts.TokenCacheTTL >= 0 {
		s.mu.Lock()
		if len(s.cache) >= maxCachedTokens {
			s.evictLocked(now)
		}
		s.cache[h] = ct
		s.mu.Unlock()
	}
	return ct, nil
}

// evictLocked drops stale entries, and everything if none was stale: a
// full cache only costs lookups, never correctness.
func (s *Server) evictLocked(now time.Time) {
	for k, v := range s.cache {
		if now.Sub(v.fetched) >= s.opts.TokenCacheTTL || !now.Before(v.tok.Expires) {
			delete(s.cache, k)
		}
	}
	if len(s.cache) >= maxCachedTokens {
		clear(s.cache)
	}
}

// revoke revokes the token with hash h if it belongs to clientID. It
// reports whether a token was revoked.
func (s *Server) revoke(ctx context.Context, clientID, token string) (bool, error) {
	if len(token) != accessTokenLen || token[:len(AccessTokenPrefix)] != AccessTokenPrefix {
		return false, nil
	}
	h := hashToken(token)
	t, err := s.store.TokenByHash(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoking access token: %w", err)
	}
	if t.ClientID != clientID {
		return false, nil // RFC 7009 §2.1: not this client's token
	}
	s.mu.Lock()
	delete(s.cache, h)
	s.mu.Unlock()
	if err := s.store.RevokeToken(ctx, h[:]); err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("revoking access token: %w", err)
	}
	s.mu.Lock()
	delete(s.cache, h) // again: a concurrent lookup may have cached it
	s.mu.Unlock()
	return true, nil
}

// clientDisabled reports whether a client may no longer use its tokens
// (disabled, or not usable under the two-person rule: !Client.Active),
// cached for the token cache's lifetime: many tokens of one client then
// cost one client lookup. Disabling a client therefore takes effect
// within that time, as revoking a token does.
func (s *Server) clientDisabled(ctx context.Context, id string, now time.Time) (bool, error) {
	if s.opts.TokenCacheTTL >= 0 {
		s.mu.RLock()
		c, ok := s.clients[id]
		s.mu.RUnlock()
		if ok && now.Sub(c.fetched) < s.opts.TokenCacheTTL {
			return c.disabled, nil
		}
	}
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, ErrInvalidToken
	}
	if err != nil {
		return false, fmt.Errorf("validating access token: %w", err)
	}
	if s.opts.TokenCacheTTL >= 0 {
		s.mu.Lock()
		if len(s.clients) >= maxCachedTokens {
			clear(s.clients)
		}
		s.clients[id] = cachedClient{disabled: !c.Active(), fetched: now}
		s.mu.Unlock()
	}
	return !c.Active(), nil
}
