package smarttest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// LaunchStore is what the App Launch suite needs of a store.
type LaunchStore interface {
	smart.Store
	smart.LaunchStore
}

// RunLaunch runs the conformance suite of smart.LaunchStore; newStore
// returns an empty store.
func RunLaunch(t *testing.T, newStore func(t *testing.T) LaunchStore) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	sc, err := scope.ParseSet("openid fhirUser launch/patient offline_access patient/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	client := smart.Client{ID: "app1", Name: "app", Type: smart.Public, RedirectURIs: []string{"https://app.example/cb"}, Scopes: sc, Created: t0, Approval: smart.ApprovalApproved, RegisteredBy: "usr_a", ApprovedBy: "usr_b"}
	authz := smart.Authorization{ID: "az1", ClientID: "app1", UserID: "usr_1", FHIRUser: "Practitioner/pr1", Roles: []string{"physician", "nurse"},
		Patient: "p1", Scopes: sc, Created: t0, Expires: t0.Add(90 * 24 * time.Hour)}
	code := smart.Code{Hash: bytes.Repeat([]byte{0xc1}, 32), Authorization: "az1", RedirectURI: "https://app.example/cb",
		Challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Nonce: "n1", Expires: t0.Add(time.Minute)}
	setup := func(t *testing.T) LaunchStore {
		st := newStore(t)
		if err := st.CreateClient(t.Context(), client); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAuthorization(t.Context(), authz, code); err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("Code", func(t *testing.T) {
		st := setup(t)
		ctx := t.Context()
		c, a, err := st.UseCode(ctx, code.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if c.RedirectURI != code.RedirectURI || c.Challenge != code.Challenge || c.Nonce != "n1" || !c.Expires.Equal(code.Expires) || !c.Used {
			t.Errorf("UseCode code = %+v", c)
		}
		if a.ID != "az1" || a.ClientID != "app1" || a.UserID != "usr_1" || a.FHIRUser != "Practitioner/pr1" || a.Patient != "p1" ||
			len(a.Roles) != 2 || a.Roles[1] != "nurse" || a.Scopes.String() != sc.String() || !a.Expires.Equal(authz.Expires) || a.Revoked {
			t.Errorf("UseCode authorization = %+v", a)
		}
		if _, a2, err := st.UseCode(ctx, code.Hash); !errors.Is(err, smart.ErrCodeUsed) || a2.ID != "az1" {
			t.Fatalf("second use: err = %v, authorization %q", err, a2.ID)
		}
		if _, _, err := st.UseCode(ctx, bytes.Repeat([]byte{0xee}, 32)); !errors.Is(err, smart.ErrNotFound) {
			t.Fatalf("unknown code: err = %v", err)
		}
	})

	t.Run("CodeRace", func(t *testing.T) {
		st := setup(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, used := 0, 0
		for range 8 {
			wg.Go(func() {
				_, _, err := st.UseCode(t.Context(), code.Hash)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, smart.ErrCodeUsed):
					used++
				default:
					t.Errorf("UseCode: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || used != 7 {
			t.Fatalf("%d uses won and %d saw ErrCodeUsed, want 1 and 7", wins, used)
		}
	})

	t.Run("FamilyRevocation", func(t *testing.T) {
		st := setup(t)
		ctx := t.Context()
		h := bytes.Repeat([]byte{0xa7}, 32)
		if err := st.PutToken(ctx, smart.Token{Hash: h, ClientID: "app1", Scopes: sc, Issued: t0, Expires: t0.Add(5 * time.Minute), Authorization: "az1"}); err != nil {
			t.Fatal(err)
		}
		tok, err := st.TokenByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Authorization != "az1" || tok.Launch == nil || tok.Launch.UserID != "usr_1" || tok.Launch.Patient != "p1" || tok.Launch.Revoked {
			t.Fatalf("TokenByHash of a launch token = %+v (launch %+v)", tok, tok.Launch)
		}
		rt := smart.RefreshToken{Hash: bytes.Repeat([]byte{0xb7}, 32), Authorization: "az1", Issued: t0, Expires: t0.Add(time.Hour)}
		if err := st.PutRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeAuthorization(ctx, "az1"); err != nil {
			t.Fatal(err)
		}
		if tok, err := st.TokenByHash(ctx, h); err != nil || !tok.Revoked || !tok.Launch.Revoked {
			t.Errorf("access token after family revocation: %+v, %v", tok, err)
		}
		if got, err := st.RefreshToken(ctx, rt.Hash); err != nil || !got.Spent {
			t.Errorf("refresh token after family revocation: %+v, %v", got, err)
		}
		if a, err := st.Authorization(ctx, "az1"); err != nil || !a.Revoked {
			t.Errorf("authorization after revocation: %+v, %v", a, err)
		}
		if err := st.RevokeAuthorization(ctx, "nope"); !errors.Is(err, smart.ErrNotFound) {
			t.Errorf("revoke unknown: err = %v", err)
		}
	})

	t.Run("RefreshRotation", func(t *testing.T) {
		st := setup(t)
		ctx := t.Context()
		r1 := smart.RefreshToken{Hash: bytes.Repeat([]byte{0x01}, 32), Authorization: "az1", Issued: t0, Expires: t0.Add(time.Hour)}
		if err := st.PutRefreshToken(ctx, r1); err != nil {
			t.Fatal(err)
		}
		got, err := st.RefreshToken(ctx, r1.Hash)
		if err != nil || got.Authorization != "az1" || got.Spent || !got.Expires.Equal(r1.Expires) {
			t.Fatalf("RefreshToken = %+v, %v", got, err)
		}
		r2 := smart.RefreshToken{Hash: bytes.Repeat([]byte{0x02}, 32), Authorization: "az1", Issued: t0.Add(time.Minute), Expires: t0.Add(2 * time.Hour)}
		if err := st.RotateRefreshToken(ctx, r1.Hash, r2); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.RefreshToken(ctx, r1.Hash); !got.Spent {
			t.Error("the rotated token is not spent")
		}
		r3 := smart.RefreshToken{Hash: bytes.Repeat([]byte{0x03}, 32), Authorization: "az1", Issued: t0.Add(2 * time.Minute), Expires: t0.Add(2 * time.Hour)}
		if err := st.RotateRefreshToken(ctx, r1.Hash, r3); !errors.Is(err, smart.ErrRefreshSpent) {
			t.Fatalf("rotating a spent token: err = %v", err)
		}
		if _, err := st.RefreshToken(ctx, r3.Hash); !errors.Is(err, smart.ErrNotFound) {
			t.Errorf("a refused rotation stored its new token: %v", err)
		}
		// Concurrent rotations of one token: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 6 {
			wg.Go(func() {
				next := smart.RefreshToken{Hash: bytes.Repeat([]byte{byte(0x40 + i)}, 32), Authorization: "az1", Issued: t0.Add(3 * time.Minute), Expires: t0.Add(2 * time.Hour)}
				err := st.RotateRefreshToken(t.Context(), r2.Hash, next)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if !errors.Is(err, smart.ErrRefreshSpent) {
					t.Errorf("RotateRefreshToken: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent rotations won, want 1", wins)
		}
	})

	t.Run("SigningKey", func(t *testing.T) {
		st := newStore(t)
		ctx := t.Context()
		if _, err := st.SigningKey(ctx); !errors.Is(err, smart.ErrNotFound) {
			t.Fatalf("no key yet: err = %v", err)
		}
		k := smart.SigningKey{KID: "k1", Alg: "RS256", Sealed: "sealed-bytes", Created: t0}
		if err := st.PutSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSigningKey(ctx, smart.SigningKey{KID: "k2", Alg: "RS256", Sealed: "other", Created: t0}); !errors.Is(err, smart.ErrExists) {
			t.Fatalf("second key: err = %v", err)
		}
		got, err := st.SigningKey(ctx)
		if err != nil || got.KID != "k1" || got.Sealed != "sealed-bytes" || !got.Created.Equal(t0) {
			t.Fatalf("SigningKey = %+v, %v", got, err)
		}
	})
}
