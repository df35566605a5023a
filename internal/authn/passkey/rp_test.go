package passkey_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
	"github.com/phivault/phivault/internal/keys"
)

const origin = "https://ehr.example.org"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newRP(t *testing.T) (*passkey.RP, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	rp, err := passkey.New(passkey.Config{BaseURL: origin + "/base/", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return rp, c
}

func options(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register makes a registered credential of u on a.
func register(t *testing.T, rp *passkey.RP, u passkey.User, a *passkeytest.Authenticator) passkey.Credential {
	t.Helper()
	opts, c, err := rp.BeginRegistration(u, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Register(options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := rp.FinishRegistration(u, c, resp, "laptop")
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	cred.ID = "pk-" + u.ID
	return cred
}

func TestNew(t *testing.T) {
	rp, _ := newRP(t)
	if rp.ID() != "ehr.example.org" || rp.Origin() != origin {
		t.Errorf("rp id %q origin %q", rp.ID(), rp.Origin())
	}
	for _, base := range []string{"", "ftp://x", "/relative", "https://"} {
		if _, err := passkey.New(passkey.Config{BaseURL: base}); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := passkey.New(passkey.Config{BaseURL: "https://127.0.0.1:8443"}); !errors.Is(err, passkey.ErrIPAddress) {
		t.Errorf("IP base URL: %v, want ErrIPAddress", err)
	}
	loc, err := passkey.New(passkey.Config{BaseURL: "http://localhost:8080"})
	if err != nil || loc.ID() != "localhost" || loc.Origin() != "http://localhost:8080" {
		t.Errorf("localhost: %v", err)
	}
}

func TestRegistrationOptions(t *testing.T) {
	rp, _ := newRP(t)
	u := passkey.User{ID: "usr_1", Name: "alice"}
	opts, c, err := rp.BeginRegistration(u, 7)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		PublicKey struct {
			RP                     struct{ ID string }
			PubKeyCredParams       []struct{ Alg int } `json:"pubKeyCredParams"`
			Attestation            string
			AuthenticatorSelection struct {
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options(t, opts), &got); err != nil {
		t.Fatal(err)
	}
	var algs []int
	for _, p := range got.PublicKey.PubKeyCredParams {
		algs = append(algs, p.Alg)
	}
	if got.PublicKey.RP.ID != "ehr.example.org" || got.PublicKey.AuthenticatorSelection.UserVerification != "required" ||
		got.PublicKey.Attestation != "none" || len(algs) != 3 || algs[0] != -7 || algs[1] != -8 || algs[2] != -257 {
		t.Errorf("options: %+v", got)
	}
	if c.Kind != passkey.KindRegister || c.User != "usr_1" || c.Version != 7 || c.Challenge == "" {
		t.Errorf("ceremony: %+v", c)
	}
}

func TestFinishRegistrationRefusals(t *testing.T) {
	u := passkey.User{ID: "usr_1", Name: "alice"}
	for _, tc := range []struct {
		name  string
		edit  func(a *passkeytest.Authenticator)
		reply func(b []byte) []byte
		want  error
	}{
		{"origin of another site", func(a *passkeytest.Authenticator) { a.Origin = "https://evil.example" }, nil, passkey.ErrRejected},
		{"origin of a sibling subdomain", func(a *passkeytest.Authenticator) { a.Origin = "https://x.ehr.example.org" }, nil, passkey.ErrRejected},
		{"http instead of https", func(a *passkeytest.Authenticator) { a.Origin = "http://ehr.example.org" }, nil, passkey.ErrRejected},
		{"rp id of another site", func(a *passkeytest.Authenticator) { a.RPID = "example.org" }, nil, passkey.ErrRejected},
		{"no user verification", func(a *passkeytest.Authenticator) { a.UV = false }, nil, passkey.ErrRejected},
		{"no user presence", func(a *passkeytest.Authenticator) { a.UP = false }, nil, passkey.ErrRejected},
		{"not json", nil, func([]byte) []byte { return []byte("{") }, passkey.ErrRejected},
		{"empty object", nil, func([]byte) []byte { return []byte("{}") }, passkey.ErrRejected},
		{"too large", nil, func(b []byte) []byte { return append(b, make([]byte, passkey.MaxResponseBytes)...) }, passkey.ErrRejected},
		{"assertion instead of attestation", nil, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "attestationObject", "authenticatorData", 1))
		}, passkey.ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp, _ := newRP(t)
			a, err := passkeytest.New(origin)
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(a)
			}
			opts, c, err := rp.BeginRegistration(u, 1)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Register(options(t, opts))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reply != nil {
				resp = tc.reply(resp)
			}
			_, err = rp.FinishRegistration(u, c, resp, "x")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), c.Challenge) {
				t.Errorf("error text %q contains the challenge", err)
			}
		})
	}
}

func TestRegistrationCeremonyChecks(t *testing.T) {
	rp, clk := newRP(t)
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, _ := passkeytest.New(origin)
	opts, c, err := rp.BeginRegistration(u, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Register(options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	other := passkey.User{ID: "usr_2", Name: "bob"}
	if _, err := rp.FinishRegistration(other, c, resp, ""); !errors.Is(err, passkey.ErrInvalidCeremony) {
		t.Errorf("another user's ceremony: %v", err)
	}
	lc := c
	lc.Kind = passkey.KindLogin
	if _, err := rp.FinishRegistration(u, lc, resp, ""); !errors.Is(err, passkey.ErrInvalidCeremony) {
		t.Errorf("login ceremony: %v", err)
	}
	// An answer to another ceremony's challenge.
	_, c2, _ := rp.BeginRegistration(u, 1)
	if _, err := rp.FinishRegistration(u, c2, resp, ""); !errors.Is(err, passkey.ErrRejected) {
		t.Errorf("answer to another challenge: %v", err)
	}
	clk.Advance(passkey.CeremonyTTL)
	if _, err := rp.FinishRegistration(u, c, resp, ""); !errors.Is(err, passkey.ErrInvalidCeremony) {
		t.Errorf("expired: %v", err)
	}
}

func TestRegisterTwiceRefused(t *testing.T) {
	rp, _ := newRP(t)
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, _ := passkeytest.New(origin)
	u.Credentials = append(u.Credentials, register(t, rp, u, a))
	opts, c, err := rp.BeginRegistration(u, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(options(t, opts)), `"excludeCredentials"`) {
		t.Error("existing credentials are not excluded")
	}
	resp, _ := a.Register(options(t, opts))
	if _, err := rp.FinishRegistration(u, c, resp, ""); !errors.Is(err, passkey.ErrRejected) {
		t.Errorf("same credential again: %v", err)
	}
}

func TestLogin(t *testing.T) {
	u := passkey.User{ID: "usr_1", Name: "alice"}
	for _, tc := range []struct {
		name   string
		edit   func(a *passkeytest.Authenticator)
		reply  func(b []byte) []byte
		want   error
		before uint32 // stored counter
	}{
		{"valid", nil, nil, nil, 0},
		{"valid with counter", func(a *passkeytest.Authenticator) { a.Counter = 5 }, nil, nil, 5},
		{"origin of another site", func(a *passkeytest.Authenticator) { a.Origin = "https://evil.example" }, nil, passkey.ErrRejected, 0},
		{"origin with another port", func(a *passkeytest.Authenticator) { a.Origin = "https://ehr.example.org:8443" }, nil, passkey.ErrRejected, 0},
		{"rp id of another site", func(a *passkeytest.Authenticator) { a.RPID = "evil.example" }, nil, passkey.ErrRejected, 0},
		{"no user verification", func(a *passkeytest.Authenticator) { a.UV = false }, nil, passkey.ErrRejected, 0},
		{"no user presence", func(a *passkeytest.Authenticator) { a.UP = false }, nil, passkey.ErrRejected, 0},
		{"counter repeated", func(a *passkeytest.Authenticator) { a.Counter, a.Step = 5, 0 }, nil, passkey.ErrSignCount, 5},
		{"counter went back", func(a *passkeytest.Authenticator) { a.Counter = 2 }, nil, passkey.ErrSignCount, 9},
		{"counter zero after non-zero", func(a *passkeytest.Authenticator) { a.Counter, a.Step = 0, 0 }, nil, passkey.ErrSignCount, 4},
		{"malformed json", nil, func([]byte) []byte { return []byte(`{"id":`) }, passkey.ErrRejected, 0},
		{"signature flipped", nil, func(b []byte) []byte {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			r := m["response"].(map[string]any)
			sig := r["signature"].(string)
			r["signature"] = sig[:len(sig)-3] + "AAA"
			out, _ := json.Marshal(m)
			return out
		}, passkey.ErrRejected, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp, _ := newRP(t)
			a, _ := passkeytest.New(origin)
			cred := register(t, rp, u, a)
			cred.SignCount = tc.before
			uu := u
			uu.Credentials = []passkey.Credential{cred}
			if tc.edit != nil {
				tc.edit(a)
			}
			opts, c, err := rp.BeginLogin(uu, 1)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Assert(options(t, opts))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reply != nil {
				resp = tc.reply(resp)
			}
			use, err := rp.FinishLogin(uu, c, resp)
			if !errors.Is(err, tc.want) {
				var re *passkey.RejectError
				errors.As(err, &re)
				reason := ""
				if re != nil {
					reason = re.Reason
				}
				t.Fatalf("err = %v (%s), want %v", err, reason, tc.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), c.Challenge) {
					t.Errorf("error text contains the challenge")
				}
				return
			}
			if use.Credential.ID != cred.ID || use.PrevSignCount != tc.before || use.Credential.SignCount != a.Counter {
				t.Errorf("use = %+v (counter %d)", use, a.Counter)
			}
		})
	}
}

func TestLoginForeignCredential(t *testing.T) {
	rp, _ := newRP(t)
	alice := passkey.User{ID: "usr_1", Name: "alice"}
	bob := passkey.User{ID: "usr_2", Name: "bob"}
	aliceKey, _ := passkeytest.New(origin)
	bobKey, _ := passkeytest.New(origin)
	alice.Credentials = []passkey.Credential{register(t, rp, alice, aliceKey)}
	bob.Credentials = []passkey.Credential{register(t, rp, bob, bobKey)}

	// Bob's password step passed; Alice's authenticator answers.
	opts, c, err := rp.BeginLogin(bob, 1)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := aliceKey.Assert(options(t, opts))
	if _, err := rp.FinishLogin(bob, c, resp); !errors.Is(err, passkey.ErrRejected) {
		t.Errorf("alice's credential for bob: %v", err)
	}
	// Alice's ceremony used for Bob.
	_, ac, _ := rp.BeginLogin(alice, 1)
	resp, _ = bobKey.Assert(options(t, opts))
	if _, err := rp.FinishLogin(bob, ac, resp); !errors.Is(err, passkey.ErrInvalidCeremony) {
		t.Errorf("alice's ceremony for bob: %v", err)
	}
	// Without passkeys there is nothing to begin.
	if _, _, err := rp.BeginLogin(passkey.User{ID: "usr_3", Name: "carol"}, 1); !errors.Is(err, passkey.ErrRejected) {
		t.Errorf("begin without passkeys: %v", err)
	}
}

func TestLoginExpiredAndReplayedAnswer(t *testing.T) {
	rp, clk := newRP(t)
	u := passkey.User{ID: "usr_1", Name: "alice"}
	a, _ := passkeytest.New(origin)
	u.Credentials = []passkey.Credential{register(t, rp, u, a)}
	opts, c, _ := rp.BeginLogin(u, 1)
	resp, _ := a.Assert(options(t, opts))
	// The same answer to a fresh ceremony: the challenge differs.
	_, c2, _ := rp.BeginLogin(u, 1)
	if _, err := rp.FinishLogin(u, c2, resp); !errors.Is(err, passkey.ErrRejected) {
		t.Errorf("answer replayed to a new ceremony: %v", err)
	}
	clk.Advance(passkey.CeremonyTTL)
	if _, err := rp.FinishLogin(u, c, resp); !errors.Is(err, passkey.ErrInvalidCeremony) {
		t.Errorf("expired ceremony: %v", err)
	}
}

func testKeyring(t testing.TB) *keys.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if err := keys.CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	kek, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(kek, keys.Options{})
	now := time.Now()
	blind, _ := kr.NewSystemKey(keys.SystemBlindIndex, now)
	tok, _ := kr.NewSystemKey(keys.SystemToken, now)
	aud, _ := kr.NewSystemKey(keys.SystemAudit, now)
	if err := kr.LoadSystemKeys(blind, tok, aud); err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpen(t *testing.T) {
	kr := testKeyring(t)
	now := time.Unix(1_800_000_000, 0)
	good := passkey.Ceremony{Kind: passkey.KindLogin, User: "usr_1", Version: 5, Challenge: strings.Repeat("A", 43), Expires: now.Add(time.Minute).Unix()}
	tok, err := passkey.Seal(kr, good)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, good.Challenge) {
		t.Error("sealed ceremony shows the challenge")
	}
	challengeTok, _ := kr.SealToken("login-challenge", []byte(`{"k":"login","u":"usr_1","v":5,"c":"`+good.Challenge+`","e":9999999999}`))
	for _, tc := range []struct {
		name, token, kind string
		at                time.Time
		ok                bool
	}{
		{"valid", tok, passkey.KindLogin, now, true},
		{"other kind", tok, passkey.KindRegister, now, false},
		{"expired", tok, passkey.KindLogin, now.Add(time.Minute), false},
		{"tampered", tok[:len(tok)-2] + "AA", passkey.KindLogin, now, false},
		{"empty", "", passkey.KindLogin, now, false},
		{"token of another purpose", challengeTok, passkey.KindLogin, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := passkey.Open(kr, tc.token, tc.kind, tc.at)
			if tc.ok != (err == nil) || (tc.ok && c != good) {
				t.Fatalf("Open = %+v, %v; want ok=%v", c, err, tc.ok)
			}
			if err != nil && !errors.Is(err, passkey.ErrInvalidCeremony) {
				t.Errorf("err = %v, want ErrInvalidCeremony", err)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"  Work laptop ":        "Work laptop",
		"a\x00b\nc\u202e":       "abc\u202e",
		"":                      "Passkey added 2026-11-29",
		"\t\n":                  "Passkey added 2026-11-29",
		strings.Repeat("é", 40): strings.Repeat("é", 32),
	} {
		if got := passkey.CleanName(in, now); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func timeNow() time.Time { return time.Now() }
