package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Limits on JWK Sets. A client rotates keys by publishing two or three at
// once; RSA verification cost grows with the modulus, so it is capped.
const (
	// MaxJWKSBytes bounds a JWK Set, inline or fetched.
	MaxJWKSBytes = 64 << 10
	// MaxJWKSKeys bounds the keys in a set.
	MaxJWKSKeys = 16
	// MinRSABits: SMART Backend Services and NIST SP 800-57 ask RSA keys
	// of at least 2048 bits.
	MinRSABits = 2048
	// MaxRSABits bounds verification work an attacker-chosen key drives.
	MaxRSABits = 8192
	// maxKIDLen bounds a key id.
	maxKIDLen = 256
)

// keySet is a validated public JWK Set and its canonical JSON.
type keySet struct {
	keys []jose.JSONWebKey
	json []byte
}

func (s keySet) key(kid string) (jose.JSONWebKey, bool) {
	for _, k := range s.keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// parseJWKS parses and validates a JWK Set: at most MaxJWKSKeys public
// signing keys, each with a unique kid, RSA of MinRSABits to MaxRSABits
// or EC P-384; "use", if present, is "sig"; "alg", if present, is RS384
// for RSA and ES384 for EC. A private or symmetric key is refused. Errors
// wrap ErrInvalidJWKS and name the kid (a public value), never key
// material.
func parseJWKS(b []byte) (keySet, error) {
	if len(b) > MaxJWKSBytes {
		return keySet{}, fmt.Errorf("JWK Set larger than %d bytes: %w", MaxJWKSBytes, ErrInvalidJWKS)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return keySet{}, fmt.Errorf("JWK Set is not a JSON object with \"keys\": %w", ErrInvalidJWKS)
	}
	if len(raw.Keys) == 0 || len(raw.Keys) > MaxJWKSKeys {
		return keySet{}, fmt.Errorf("JWK Set must hold 1 to %d keys: %w", MaxJWKSKeys, ErrInvalidJWKS)
	}
	out := keySet{keys: make([]jose.JSONWebKey, 0, len(raw.Keys))}
	seen := map[string]bool{}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			// go-jose's message names the field, not the key material.
			return keySet{}, fmt.Errorf("key %d does not parse: %w", i, ErrInvalidJWKS)
		}
		if err := checkKey(k); err != nil {
			return keySet{}, fmt.Errorf("key %d: %s: %w", i, err, ErrInvalidJWKS)
		}
		if seen[k.KeyID] {
			return keySet{}, fmt.Errorf("key %d: duplicate kid: %w", i, ErrInvalidJWKS)
		}
		seen[k.KeyID] = true
		out.keys = append(out.keys, k)
	}
	js, err := json.Marshal(jose.JSONWebKeySet{Keys: out.keys})
	if err != nil {
		return keySet{}, fmt.Errorf("encoding JWK Set: %w", err)
	}
	out.json = js
	return out, nil
}

func checkKey(k jose.JSONWebKey) error {
	if k.KeyID == "" || len(k.KeyID) > maxKIDLen {
		return fmt.Errorf("kid is required (at most %d bytes)", maxKIDLen)
	}
	if !k.IsPublic() {
		return errors.New("not a public key (private and symmetric keys are refused)")
	}
	if k.Use != "" && k.Use != "sig" {
		return errors.New(`"use" must be "sig"`)
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		if n := pk.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("RSA key of %d bits (must be %d to %d)", n, MinRSABits, MaxRSABits)
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.RS384) {
			return errors.New(`RSA key "alg" must be RS384`)
		}
	case *ecdsa.PublicKey:
		if pk.Curve == nil || pk.Curve.Params().Name != "P-384" {
			return errors.New("EC key must be on P-384")
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.ES384) {
			return errors.New(`EC key "alg" must be ES384`)
		}
	default:
		return errors.New("only RSA and EC P-384 keys are accepted")
	}
	return nil
}

// keyMatchesAlg reports whether k may verify a JWS of alg.
func keyMatchesAlg(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS384)
	case *ecdsa.PublicKey:
		return alg == string(jose.ES384)
	}
	return false
}

// JWKS fetching defaults.
const (
	// DefaultJWKSCacheTTL is how long a fetched JWK Set is used before it
	// is fetched again.
	DefaultJWKSCacheTTL = 5 * time.Minute
	// DefaultJWKSTimeout bounds one fetch when no HTTPClient is given.
	DefaultJWKSTimeout = 5 * time.Second
	// jwksMinRefresh rate-limits refetches for an unknown kid (key
	// rotation), so unknown kids cannot make us hammer the client's host.
	jwksMinRefresh = 30 * time.Second
)

// keyResolver finds a client's verification key, fetching and caching
// JWK Sets published at a URL.
type keyResolver struct {
	client        *http.Client
	ttl           time.Duration
	allowLoopback bool
	now           func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry // by URL
}

type jwksEntry struct {
	mu      sync.Mutex // held during a fetch: one fetch per URL at a time
	set     keySet
	fetched time.Time
}

func newKeyResolver(c *http.Client, ttl time.Duration, allowLoopback bool, now func() time.Time) *keyResolver {
	cc := *c // a copy: our redirect policy must not change the caller's client
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("JWKS fetch: redirects are refused") }
	return &keyResolver{client: &cc, ttl: ttl, allowLoopback: allowLoopback, now: now, entries: map[string]*jwksEntry{}}
}

// key returns the key with kid from c's registered set.
func (r *keyResolver) key(ctx context.Context, c Client, kid string) (jose.JSONWebKey, error) {
	if c.JWKSURL == "" {
		set, err := parseJWKS(c.JWKS)
		if err != nil {
			return jose.JSONWebKey{}, fmt.Errorf("client %s: stored JWK Set: %w", c.ID, err)
		}
		k, ok := set.key(kid)
		if !ok {
			return jose.JSONWebKey{}, errors.New("no registered key has this kid")
		}
		return k, nil
	}
	r.mu.Lock()
	e, ok := r.entries[c.JWKSURL]
	if !ok {
		e = &jwksEntry{}
		r.entries[c.JWKSURL] = e
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := r.now()
	age := now.Sub(e.fetched)
	if !e.fetched.IsZero() && age < r.ttl {
		if k, ok := e.set.key(kid); ok {
			return k, nil
		}
		if age < jwksMinRefresh {
			return jose.JSONWebKey{}, errors.New("no published key has this kid")
		}
	}
	set, err := r.fetch(ctx, c.JWKSURL)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("client %s: %w", c.ID, err)
	}
	e.set, e.fetched = set, now
	k, ok := e.set.key(kid)
	if !ok {
		return jose.JSONWebKey{}, errors.New("no published key has this kid")
	}
	return k, nil
}

func (r *keyResolver) fetch(ctx context.Context, u string) (keySet, error) {
	if err := checkJWKSURL(u, r.allowLoopback); err != nil {
		return keySet{}, fmt.Errorf("fetching JWK Set: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return keySet{}, fmt.Errorf("fetching JWK Set: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return keySet{}, fmt.Errorf("fetching JWK Set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return keySet{}, fmt.Errorf("fetching JWK Set: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return keySet{}, fmt.Errorf("fetching JWK Set: %w", err)
	}
	set, err := parseJWKS(b)
	if err != nil {
		return keySet{}, fmt.Errorf("fetched JWK Set: %w", err)
	}
	return set, nil
}

// ValidateJWKS checks a JWK Set by the rules of parseJWKS and returns its
// canonical JSON (public members only). Errors wrap ErrInvalidJWKS.
func ValidateJWKS(b []byte) ([]byte, error) {
	s, err := parseJWKS(b)
	if err != nil {
		return nil, err
	}
	return s.json, nil
}
