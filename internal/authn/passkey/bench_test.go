package passkey_test

import (
	"testing"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
)

// BenchmarkFinishLogin measures verifying one ES256 assertion (parsing,
// client data, authenticator data, signature) through go-webauthn.
func BenchmarkFinishLogin(b *testing.B) {
	rp, err := passkey.New(passkey.Config{BaseURL: origin})
	if err != nil {
		b.Fatal(err)
	}
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, _ := passkeytest.New(origin)
	opts, c, _ := rp.BeginRegistration(u, 1)
	reg, _ := a.Register(mustJSON(opts))
	cred, err := rp.FinishRegistration(u, c, reg, "")
	if err != nil {
		b.Fatal(err)
	}
	cred.ID = "pk"
	u.Credentials = []passkey.Credential{cred}
	lopts, lc, _ := rp.BeginLogin(u, 1)
	a.Step = 0 // the same answer each time; the stored count stays 0
	resp, _ := a.Assert(mustJSON(lopts))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rp.FinishLogin(u, lc, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinishRegistration measures verifying one "none" attestation.
func BenchmarkFinishRegistration(b *testing.B) {
	rp, err := passkey.New(passkey.Config{BaseURL: origin})
	if err != nil {
		b.Fatal(err)
	}
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, _ := passkeytest.New(origin)
	opts, c, _ := rp.BeginRegistration(u, 1)
	reg, _ := a.Register(mustJSON(opts))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rp.FinishRegistration(u, c, reg, ""); err != nil {
			b.Fatal(err)
		}
	}
}
