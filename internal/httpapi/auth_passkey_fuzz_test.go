package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/identity"
)

// FuzzPasskeyFinish sends arbitrary input to both finish endpoints of
// one SQLite server per fuzzing process: as the whole body, and as the
// "credential" of an otherwise genuine request (a live login challenge
// and ceremony), which reaches go-webauthn's parsers. Every answer must
// be a JSON error of 400, 401, 413 or 415 (a fuzzer cannot forge an
// assertion, and the account's lockout answers 401 too); anything else,
// a 5xx above all, means a panic or an unhandled error.
func FuzzPasskeyFinish(f *testing.F) {
	e := startAuthHost(f, func(o *login.Options) {
		o.AddressLimits = password.AddressLimits{Rate: rate.Inf}
		// Refusals are the point here; the lockout is tested elsewhere.
		o.Lockout = password.Lockout{FreeFailures: 1 << 30, MaxFailures: 1 << 30}
	}, "localhost")
	f.Add([]byte(`{"challenge":"x","ceremony":"y","credential":{}}`), []byte(`{}`))
	f.Add([]byte(`{"credential":[]}`), []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}`))
	f.Add([]byte(`null`), []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Add([]byte(`{"challenge":1}`), []byte(`"str"`))
	var enrolled, fresh string
	f.Fuzz(func(t *testing.T, body, cred []byte) {
		if enrolled == "" {
			// One passkey account (login finish) and one account that
			// owes enrolment (register finish), made on first use.
			enrolled, fresh = "fuzz.enrolled", "fuzz.fresh"
			e.addUser(t, enrolled, pw, identity.RoleNurse)
			e.enrolPasskey(t, enrolled, pw, e.authenticator(t))
			e.addUser(t, fresh, pw, identity.RoleNurse)
		}
		check := func(path string, r resp) {
			t.Helper()
			switch r.status {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("%s answered %d %s", path, r.status, r.body)
			}
			if r.str("error") == "" {
				t.Fatalf("%s: an error without a message: %s", path, r.body)
			}
		}
		for _, path := range []string{"/auth/webauthn/login/finish", "/auth/webauthn/register/finish"} {
			check(path, e.do(t, "POST", path, json.RawMessage(validJSONOr(body)), creds{}))
		}
		c := json.RawMessage(validJSONOr(cred))
		ch := e.challenge(t, enrolled, pw)
		if ch.json["mfa_required"] == true {
			b := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
			if b.status == http.StatusOK {
				check("login finish", e.do(t, "POST", "/auth/webauthn/login/finish",
					map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony"), "credential": c}, creds{}))
			}
		}
		ch = e.challenge(t, fresh, pw)
		b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
		if b.status == http.StatusOK {
			check("register finish", e.do(t, "POST", "/auth/webauthn/register/finish",
				map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony"), "credential": c}, creds{}))
		}
	})
}

// validJSONOr returns b when it is one JSON value, else b as a JSON
// string (e.do marshals its body; a RawMessage must be valid JSON).
func validJSONOr(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}
