package keys

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// fakeVault is a hand-written Vault transit engine: PUT/POST
// /v1/<mount>/encrypt/<name> and /v1/<mount>/decrypt/<name>, the paths
// tink-go-hcvault derives from "/<mount>/keys/<name>". It really encrypts
// (with a Tink AEAD), binding "associated_data", so tampering and owner
// binding are tested end to end.
type fakeVault struct {
	t     *testing.T
	token string
	mount string
	name  string
	aead  tink.AEAD
	calls atomic.Int64
}

func newFakeVault(t *testing.T, token string) (*fakeVault, *httptest.Server) {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	fv := &fakeVault{t: t, token: token, mount: "transit", name: "phivault", aead: a}
	srv := httptest.NewUnstartedServer(fv)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-TLS case logs a handshake error
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return fv, srv
}

func (fv *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fv.calls.Add(1)
	fail := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "method")
		return
	}
	if r.Header.Get("X-Vault-Token") != fv.token {
		fail(http.StatusForbidden, "permission denied")
		return
	}
	var req map[string]string
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "bad json")
		return
	}
	ad, err := base64.StdEncoding.DecodeString(req["associated_data"])
	if err != nil {
		fail(http.StatusBadRequest, "bad associated_data")
		return
	}
	var data map[string]string
	switch r.URL.Path {
	case "/v1/" + fv.mount + "/encrypt/" + fv.name:
		pt, err := base64.StdEncoding.DecodeString(req["plaintext"])
		if err != nil {
			fail(http.StatusBadRequest, "bad plaintext")
			return
		}
		ct, err := fv.aead.Encrypt(pt, ad)
		if err != nil {
			fail(http.StatusInternalServerError, "encrypt")
			return
		}
		data = map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct)}
	case "/v1/" + fv.mount + "/decrypt/" + fv.name:
		raw, ok := strings.CutPrefix(req["ciphertext"], "vault:v1:")
		ct, err := base64.StdEncoding.DecodeString(raw)
		if !ok || err != nil {
			fail(http.StatusBadRequest, "invalid ciphertext")
			return
		}
		pt, err := fv.aead.Decrypt(ct, ad)
		if err != nil {
			fail(http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}
	default:
		fail(http.StatusNotFound, "no handler for route "+r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

// vaultClient returns the test server's TLS client with a timeout, as the
// app injects one.
func vaultClient(srv *httptest.Server) *http.Client {
	c := srv.Client()
	c.Timeout = 5 * time.Second
	return c
}

func TestVaultKEK(t *testing.T) {
	const token = "s.test-token-do-not-log"
	fv, srv := newFakeVault(t, token)
	host := strings.TrimPrefix(srv.URL, "https://")
	uri := "hcvault://" + host + "/transit/keys/phivault"

	kek, err := OpenKEK(t.Context(), KEKSource{URI: uri, Token: token}, vaultClient(srv))
	if err != nil {
		t.Fatalf("OpenKEK(%s): %v", uri, err)
	}
	if fv.calls.Load() != 2 {
		t.Errorf("OpenKEK made %d Vault calls, want 2 (probe encrypt and decrypt)", fv.calls.Load())
	}
	if kek.Description() != uri || strings.Contains(kek.String(), token) {
		t.Errorf("Description() = %q, want %q and no token", kek.Description(), uri)
	}
	if kek.PrimaryID() != 0 {
		t.Errorf("PrimaryID() = %d, want 0 for a KMS", kek.PrimaryID())
	}

	k := NewKeyring(kek, Options{})
	rec := newDEKRec(t, k, "Patient/p1")
	if rec.KEKID != 0 {
		t.Errorf("KEKID = %d, want 0", rec.KEKID)
	}
	k.Forget("Patient/p1") // force an unwrap through Vault
	d := dekOf(t, k, rec)
	ad := ResourceAD{"Observation", "o1", 1, "Patient/p1"}
	ct, err := d.Seal([]byte("data"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := d.Open(ct, ad); err != nil || string(pt) != "data" {
		t.Fatalf("Open = %q, %v", pt, err)
	}

	moved := rec
	moved.Owner = "Patient/p2"
	if _, err := k.DEK(moved); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Vault-wrapped DEK moved to another owner: %v, want ErrDecrypt", err)
	}
	re, err := k.Rewrap(rec)
	if err != nil {
		t.Fatalf("Rewrap via Vault: %v", err)
	}
	if _, err := NewKeyring(kek, Options{}).DEK(re); err != nil {
		t.Fatalf("DEK of rewrapped record: %v", err)
	}
}

func TestVaultKEKRefuses(t *testing.T) {
	const token = "s.right"
	_, srv := newFakeVault(t, token)
	host := strings.TrimPrefix(srv.URL, "https://")

	tests := []struct {
		name    string
		uri     string
		token   string
		client  *http.Client
		wantSub string
	}{
		{"wrong token", "hcvault://" + host + "/transit/keys/phivault", "s.wrong", vaultClient(srv), "permission denied"},
		{"no token", "hcvault://" + host + "/transit/keys/phivault", "", vaultClient(srv), VaultTokenEnv + " is not set"},
		{"unknown key", "hcvault://" + host + "/transit/keys/other", token, vaultClient(srv), "probe encrypt"},
		{"no client", "hcvault://" + host + "/transit/keys/phivault", token, nil, "no HTTP client"},
		{"untrusted TLS", "hcvault://" + host + "/transit/keys/phivault", token, &http.Client{Timeout: time.Second}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenKEK(t.Context(), KEKSource{URI: tt.uri, Token: tt.token}, tt.client)
			if err == nil {
				t.Fatal("OpenKEK succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not contain %q", err, tt.wantSub)
			}
			if strings.Contains(err.Error(), token) || (tt.token != "" && strings.Contains(err.Error(), tt.token)) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestParseVaultURI(t *testing.T) {
	tests := []struct {
		uri      string
		host     string
		path     string
		wantFail bool
	}{
		{uri: "hcvault://vault.example:8200/transit/keys/phivault", host: "vault.example:8200", path: "/transit/keys/phivault"},
		{uri: "hcvault://vault/a/b/keys/k", host: "vault", path: "/a/b/keys/k"},
		{uri: "hcvault://vault/transit/keys/", wantFail: true},
		{uri: "hcvault://vault/keys/k", wantFail: true},
		{uri: "hcvault://vault/transit/k", wantFail: true},
		{uri: "hcvault://vault//keys/k", wantFail: true},
		{uri: "hcvault:///transit/keys/k", wantFail: true},
		{uri: "hcvault://user:s3cret@vault/transit/keys/k", wantFail: true},
		{uri: "hcvault://vault/transit/keys/k?token=s3cret", wantFail: true},
		{uri: "hcvault://vault/transit/keys/k#x", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			host, path, err := parseVaultURI(tt.uri)
			if tt.wantFail {
				if err == nil {
					t.Fatalf("parseVaultURI accepted %q", tt.uri)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil || host != tt.host || path != tt.path {
				t.Fatalf("parseVaultURI = %q, %q, %v, want %q, %q", host, path, err, tt.host, tt.path)
			}
		})
	}
}
