package login

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/keys"
)

// testKeyring returns a keyring with fresh system keys.
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
	blind, err1 := kr.NewSystemKey(keys.SystemBlindIndex, now)
	tok, err2 := kr.NewSystemKey(keys.SystemToken, now)
	aud, err3 := kr.NewSystemKey(keys.SystemAudit, now)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := kr.LoadSystemKeys(blind, tok, aud); err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestChallenge(t *testing.T) {
	kr := testKeyring(t)
	s := &Service{keys: kr}
	now := time.Unix(1_800_000_000, 0)
	good := challenge{User: "usr_1", Step: stepMFA, Version: 42, Expires: now.Add(ChallengeTTL).Unix()}
	tok, err := s.sealChallenge(good)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.sealChallenge(good); again == tok {
		t.Fatal("two challenges sealed from the same facts are equal: no fresh nonce")
	}
	cursor, err := kr.SealToken("cursor/Patient", []byte(`{"u":"usr_1","s":"mfa","v":42,"e":9999999999}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token string
		step  string
		at    time.Time
		ok    bool
	}{
		{"valid", tok, stepMFA, now, true},
		{"last second", tok, stepMFA, now.Add(ChallengeTTL - time.Second), true},
		{"expired", tok, stepMFA, now.Add(ChallengeTTL), false},
		{"other step", tok, stepEnroll, now, false},
		{"other purpose", cursor, stepMFA, now, false},
		{"tampered", tok[:len(tok)-2] + "AA", stepMFA, now, false},
		{"empty", "", stepMFA, now, false},
		{"huge", strings.Repeat("A", 1<<16), stepMFA, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.openChallenge(tc.token, tc.step, tc.at)
			if tc.ok {
				if c.Nonce == "" {
					t.Fatal("the challenge has no nonce")
				}
				c.Nonce = ""
				if err != nil || c != good {
					t.Fatalf("openChallenge = %+v, %v; want %+v", c, err, good)
				}
				return
			}
			if err != ErrInvalidChallenge {
				t.Fatalf("openChallenge = %+v, %v; want ErrInvalidChallenge", c, err)
			}
		})
	}
}

func TestDecodeChallenge(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"u":"usr_1","s":"mfa","v":1,"e":2,"n":"AAAAAAAAAAAAAAAAAAAAAA"}`, true},
		{`{"u":"usr_1","s":"enroll","v":1,"e":2,"n":"AAAAAAAAAAAAAAAAAAAAAA"}`, true},
		{`{"u":"usr_1","s":"mfa","v":1,"e":2}`, false}, // sealed before challenges were single use
		{`{"u":"usr_1","s":"mfa","v":1,"e":2,"n":"AAAA"}`, false},
		{`{"u":"usr_1","s":"mfa","v":1,"e":2,"n":"AAAAAAAAAAAAAAAAAAAAA="}`, false},
		{`{"u":"usr_1","s":"admin","v":1,"e":2}`, false},
		{`{"u":"","s":"mfa","v":1,"e":2}`, false},
		{`{"u":"usr_1","s":"mfa","v":1}`, false},
		{`{"u":"usr_1","s":"mfa","v":1,"e":2,"x":1}`, false},
		{`{"u":"usr_1","s":"mfa","v":1,"e":2}{}`, false},
		{`{"u":"usr_1","s":"mfa","v":1,"e":"2"}`, false},
		{`null`, false},
	} {
		if _, err := decodeChallenge([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("decodeChallenge(%s): %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// FuzzOpenChallenge feeds untrusted challenge tokens (the HTTP body
// field) through the whole parsing path: length check, base64url,
// AEAD with the purpose, strict JSON. Only tokens this keyring sealed
// may open; nothing may panic.
func FuzzOpenChallenge(f *testing.F) {
	kr := testKeyring(f)
	s := &Service{keys: kr}
	now := time.Unix(1_800_000_000, 0)
	valid, err := s.sealChallenge(challenge{User: "usr_1", Step: stepEnroll, Version: 1, Expires: now.Unix() + 60})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{valid, "", "AAAA", valid + "A", strings.ToUpper(valid), "%%%", strings.Repeat("_", 300)} {
		f.Add(seed, []byte(`{"u":"usr_1","s":"mfa","v":1,"e":2,"n":"AAAAAAAAAAAAAAAAAAAAAA"}`))
	}
	f.Fuzz(func(t *testing.T, token string, plain []byte) {
		for _, step := range []string{stepMFA, stepEnroll} {
			c, err := s.openChallenge(token, step, now)
			if err != nil {
				if err != ErrInvalidChallenge {
					t.Fatalf("error %v is not ErrInvalidChallenge", err)
				}
				continue
			}
			if token != valid || c.Step != step {
				t.Fatalf("opened a token that was not sealed for step %s: %+v", step, c)
			}
		}
		if c, err := decodeChallenge(plain); err == nil {
			if c.User == "" || len(c.User) > 64 || (c.Step != stepMFA && c.Step != stepEnroll) || c.Version <= 0 || c.Expires <= 0 || len(c.Nonce) != 22 {
				t.Fatalf("decodeChallenge accepted %q as %+v", plain, c)
			}
		}
	})
}
