package passkey_test

import (
	"errors"
	"testing"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
)

// FuzzFinish feeds arbitrary authenticator answers to both Finish
// steps: they must never panic, and must refuse with ErrRejected
// anything that is not a valid answer (a fuzzer cannot forge the
// signature, and for registration the challenge is fresh).
func FuzzFinish(f *testing.F) {
	rp, err := passkey.New(passkey.Config{BaseURL: origin})
	if err != nil {
		f.Fatal(err)
	}
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, err := passkeytest.New(origin)
	if err != nil {
		f.Fatal(err)
	}
	opts, c, err := rp.BeginRegistration(u, 1)
	if err != nil {
		f.Fatal(err)
	}
	reg, err := a.Register(mustJSON(opts))
	if err != nil {
		f.Fatal(err)
	}
	cred, err := rp.FinishRegistration(u, c, reg, "")
	if err != nil {
		f.Fatal(err)
	}
	cred.ID = "pk"
	u.Credentials = []passkey.Credential{cred}
	lopts, _, err := rp.BeginLogin(u, 1)
	if err != nil {
		f.Fatal(err)
	}
	asr, err := a.Assert(mustJSON(lopts))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reg)
	f.Add(asr)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{}}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, rc, err := rp.BeginRegistration(passkey.User{ID: "usr_2", Name: "bob"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rp.FinishRegistration(passkey.User{ID: "usr_2", Name: "bob"}, rc, b, ""); !errors.Is(err, passkey.ErrRejected) {
			t.Errorf("FinishRegistration accepted or failed oddly: %v", err)
		}
		_, lc, err := rp.BeginLogin(u, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rp.FinishLogin(u, lc, b); !errors.Is(err, passkey.ErrRejected) {
			t.Errorf("FinishLogin accepted or failed oddly: %v", err)
		}
	})
}

// FuzzOpen: sealed-ceremony tokens from anyone never panic and open
// only when genuine.
func FuzzOpen(f *testing.F) {
	kr := testKeyring(f)
	f.Add("")
	f.Add("AAAA")
	f.Add("v1.AAAA.BBBB")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := passkey.Open(kr, tok, passkey.KindLogin, timeNow()); err == nil {
			t.Errorf("forged token %q opened", tok)
		}
	})
}
