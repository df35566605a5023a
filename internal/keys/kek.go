package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/phivault/phivault/internal/ident"
)

// Vault client settings.
const (
	// VaultTokenEnv names the environment variable holding the Vault
	// token: secrets come from the environment, never from flags.
	VaultTokenEnv = "VAULT_TOKEN"

	// vaultRequestTimeout bounds one transit call even if the injected
	// client has no timeout: a KEK call runs on every DEK cache miss, and
	// a hung Vault must fail the request, not pile up goroutines.
	vaultRequestTimeout = 10 * time.Second

	// vaultMaxRetries is the Vault client's retry count for 5xx and
	// connection errors (its own default): it smooths a leader election.
	vaultMaxRetries = 2
)

// KEKSource says where the key-encryption key lives. Exactly one field is
// set.
type KEKSource struct {
	// KeyFile is the path of a local key file made by [CreateKeyFile].
	KeyFile string
	// URI is a Tink KMS key URI. Only "hcvault://<host>[:port]/<mount>/keys/<name>"
	// (a Vault transit key, reached over HTTPS) is compiled in.
	URI string
	// Token is the Vault token for URI. The caller reads it from the
	// environment variable VaultTokenEnv (config does): secrets come from
	// the environment, never from flags or the URI.
	Token string
}

// KEK is the key-encryption key: it wraps and unwraps DEKs and system
// keys, never data. It is immutable and safe for concurrent use.
type KEK struct {
	_ noCompare

	aead    tink.AEAD
	primary uint32          // Tink key id of the primary key; 0 for a KMS
	desc    string          // safe to log
	path    string          // the key file; "" for a KMS
	ids     map[uint32]bool // key ids in the key file; nil for a KMS
	h       *keyset.Handle  // the key file's keyset; nil for a KMS
}

// noCompare makes a struct incomparable, so key types cannot be compared
// with == (which would not be constant time, and would compare pointers
// to key material rather than keys).
type noCompare [0]func()

// OpenKEK opens the key-encryption key named by src.
//
// For a key file it checks the mode (0600 or narrower) and that every key
// is AES-256-GCM. For "hcvault://" it uses src.Token (which the caller
// read from the VAULT_TOKEN environment variable), sends every call through httpClient (which must
// not be nil and should carry timeouts; each call is also capped at 10
// seconds), and makes one encrypt/decrypt round trip to check the token
// and key before returning. Tink's remote AEAD does not take a context,
// so ctx bounds only that probe's start; the timeouts bound the rest.
//
// Other KMS schemes return an error wrapping [ErrUnsupportedKMS].
func OpenKEK(ctx context.Context, src KEKSource, httpClient *http.Client) (*KEK, error) {
	switch {
	case src.KeyFile != "" && src.URI != "":
		return nil, errors.New("opening KEK: set either a key file or a KMS URI, not both")
	case src.KeyFile != "":
		return openFileKEK(src.KeyFile)
	case src.URI != "":
		return openKMSKEK(ctx, src.URI, src.Token, httpClient)
	default:
		return nil, errors.New("opening KEK: no key file or KMS URI configured")
	}
}

func openFileKEK(path string) (*KEK, error) {
	h, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("opening key file %s: %w", path, err)
	}
	p, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("opening key file %s: %w", path, err)
	}
	ids := make(map[uint32]bool, h.Len())
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return nil, fmt.Errorf("opening key file %s: %w", path, err)
		}
		ids[e.KeyID()] = true
	}
	return &KEK{
		aead:    a,
		primary: p.KeyID(),
		desc:    fmt.Sprintf("local key file (AES-256-GCM, %d keys, primary %d)", h.Len(), p.KeyID()),
		path:    path,
		ids:     ids,
		h:       h,
	}, nil
}

func openKMSKEK(ctx context.Context, uri, token string, httpClient *http.Client) (*KEK, error) {
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return nil, errors.New("opening KEK: KMS URI has no scheme, want hcvault://host/mount/keys/name")
	}
	if !strings.EqualFold(scheme, "hcvault") {
		return nil, fmt.Errorf("opening KEK: KMS scheme %q: %w (only hcvault:// is supported)", scheme+"://", ErrUnsupportedKMS)
	}
	host, keyPath, err := parseVaultURI(uri)
	if err != nil {
		return nil, fmt.Errorf("opening KEK: %w", err)
	}
	desc := "hcvault://" + host + keyPath
	if httpClient == nil {
		return nil, fmt.Errorf("opening KEK %s: no HTTP client given", desc)
	}
	if token == "" {
		return nil, fmt.Errorf("opening KEK %s: %s is not set", desc, VaultTokenEnv)
	}
	hc := *httpClient // api.NewClient may fill in fields; leave the caller's alone
	client, err := api.NewClient(&api.Config{
		Address:    "https://" + host,
		HttpClient: &hc,
		Timeout:    vaultRequestTimeout,
		MaxRetries: vaultMaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("opening KEK %s: configuring Vault client: %w", desc, err)
	}
	client.SetToken(token)
	a, err := hcvault.NewAEAD(keyPath, client.Logical())
	if err != nil {
		return nil, fmt.Errorf("opening KEK %s: %w", desc, err)
	}
	k := &KEK{aead: a, desc: desc}
	if err := k.probe(ctx); err != nil {
		return nil, fmt.Errorf("opening KEK %s: %w", desc, err)
	}
	return k, nil
}

// parseVaultURI splits "hcvault://host[:port]/mount.../keys/name" into the
// host and the escaped key path, refusing user info, queries and
// fragments (a token in the URI would end up in logs).
func parseVaultURI(uri string) (host, keyPath string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", errors.New("malformed hcvault URI")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", errors.New("hcvault URI must not carry user info, query or fragment (put the token in " + VaultTokenEnv + ")")
	}
	if u.Host == "" {
		return "", "", errors.New("hcvault URI has no host")
	}
	keyPath = u.EscapedPath()
	parts := strings.Split(keyPath, "/")
	if n := len(parts); n < 4 || parts[0] != "" || parts[n-2] != "keys" || parts[n-1] == "" || slicesHasEmpty(parts[1:n-2]) {
		return "", "", fmt.Errorf("hcvault URI path %q is not /<mount>/keys/<name>", keyPath)
	}
	return u.Host, keyPath, nil
}

func slicesHasEmpty(s []string) bool {
	for _, p := range s {
		if p == "" {
			return true
		}
	}
	return false
}

// probe checks that the KEK can encrypt and decrypt.
func (k *KEK) probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg := []byte("phivault KEK probe")
	ad := encodeAD(domainProbe)
	ct, err := k.aead.Encrypt(msg, ad)
	if err != nil {
		return fmt.Errorf("probe encrypt: %w", err)
	}
	pt, err := k.aead.Decrypt(ct, ad)
	if err != nil {
		return fmt.Errorf("probe decrypt: %w", err)
	}
	if !bytes.Equal(pt, msg) {
		return errors.New("probe decrypt returned other bytes")
	}
	return nil
}

// PrimaryID returns the Tink key id of the KEK's primary key: the KEKID
// recorded in every key record wrapped from now on. It is 0 for a KMS KEK,
// whose key versions the KMS tracks itself.
func (k *KEK) PrimaryID() uint32 { return k.primary }

// Description says what the KEK is, for logs and the status page. It holds
// no secret: a key count and id, or the Vault host and key path.
func (k *KEK) Description() string { return k.desc }

// String implements [fmt.Stringer] without key material.
func (k *KEK) String() string { return "keys.KEK{" + k.desc + "}" }

// GoString keeps %#v from printing fields.
func (k *KEK) GoString() string { return k.String() }

// LogValue implements [slog.LogValuer] without key material.
func (k *KEK) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kek", k.desc), slog.Uint64("primary", uint64(k.primary)))
}

// wrap encrypts keyset h under the KEK, bound to owner.
func (k *KEK) wrap(h *keyset.Handle, owner ident.Owner) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), k.aead, encodeAD(domainKey, string(owner))); err != nil {
		return nil, fmt.Errorf("wrapping key of %s: %w", owner, err)
	}
	return buf.Bytes(), nil
}

// unwrap decrypts a wrapped keyset of owner. A record moved to another
// owner, or altered, fails with ErrDecrypt; Tink's detail (for a KMS, the
// HTTP status and Vault's message, never key bytes) follows it.
func (k *KEK) unwrap(wrapped []byte, owner ident.Owner) (*keyset.Handle, error) {
	if len(wrapped) > maxWrappedSize {
		return nil, fmt.Errorf("unwrapping key of %s: %w: larger than %d bytes", owner, ErrDecrypt, maxWrappedSize)
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), k.aead, encodeAD(domainKey, string(owner)))
	if err != nil {
		return nil, fmt.Errorf("unwrapping key of %s: %w: %v", owner, ErrDecrypt, err)
	}
	return h, nil
}

// maxWrappedSize caps a wrapped keyset read from the database: about 1000
// AES-256-GCM keys, far beyond any rotation history, and small enough that
// a corrupted row cannot make us parse megabytes.
const maxWrappedSize = 64 << 10
