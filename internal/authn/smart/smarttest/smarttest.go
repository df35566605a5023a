// Package smarttest is the conformance suite of smart.Store, run against
// every database (STYLE rule 30), and an end-to-end check of the
// Backend Services flow over a real store.
package smarttest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Run runs the conformance suite; newStore returns an empty store.
func Run(t *testing.T, newStore func(t *testing.T) smart.Store) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	sys, err := scope.ParseSet("system/*.rs system/Patient.cruds")
	if err != nil {
		t.Fatal(err)
	}
	client := smart.Client{ID: "c1", Name: "lab feed", Type: smart.Backend, JWKSURL: "https://lab.example/jwks",
		Scopes: sys, Created: t0, Approval: smart.ApprovalApproved, RegisteredBy: "usr_a", ApprovedBy: "usr_b"}

	t.Run("Client", func(t *testing.T) {
		st := newStore(t)
		ctx := t.Context()
		if _, err := st.Client(ctx, "c1"); !errors.Is(err, smart.ErrNotFound) {
			t.Fatalf("unknown client: err = %v", err)
		}
		if err := st.CreateClient(ctx, client); err != nil {
			t.Fatal(err)
		}
		inline := client
		inline.ID, inline.JWKSURL, inline.JWKS, inline.RedirectURIs = "c2", "", []byte(`{"keys":[]}`), []string{"https://app.example/cb"}
		if err := st.CreateClient(ctx, inline); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateClient(ctx, client); !errors.Is(err, smart.ErrExists) {
			t.Fatalf("duplicate: err = %v", err)
		}
		got, err := st.Client(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "c1" || got.Name != client.Name || got.Type != smart.Backend || got.JWKSURL != client.JWKSURL ||
			got.JWKS != nil || got.Scopes.String() != sys.String() || !got.Created.Equal(t0) || got.Disabled || len(got.RedirectURIs) != 0 ||
			got.Approval != smart.ApprovalApproved || got.RegisteredBy != "usr_a" || got.ApprovedBy != "usr_b" {
			t.Errorf("Client = %+v", got)
		}
		// An approval state the server does not know is refused (fail
		// closed: it could not be told apart from an approved one).
		for _, a := range []smart.ClientApproval{"", "approve"} {
			bad := client
			bad.ID, bad.Approval = "c-bad", a
			if err := st.CreateClient(ctx, bad); err == nil {
				t.Errorf("a client in approval state %q was stored", a)
			}
		}
		got, err = st.Client(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		if string(got.JWKS) != `{"keys":[]}` || got.JWKSURL != "" || len(got.RedirectURIs) != 1 || got.RedirectURIs[0] != "https://app.example/cb" {
			t.Errorf("Client = %+v", got)
		}
		for _, bad := range []string{"", "x\x00y", string(bytes.Repeat([]byte("a"), 1000))} {
			if _, err := st.Client(ctx, bad); !errors.Is(err, smart.ErrNotFound) {
				t.Errorf("Client(%.10q): err = %v", bad, err)
			}
		}
	})

	t.Run("UseJTI", func(t *testing.T) {
		st := newStore(t)
		ctx := t.Context()
		for _, id := range []string{"c1", "c2"} {
			c := client
			c.ID = id
			if err := st.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		exp := t0.Add(5 * time.Minute)
		if err := st.UseJTI(ctx, "c1", "j1", exp, t0); err != nil {
			t.Fatal(err)
		}
		if err := st.UseJTI(ctx, "c1", "j1", exp, t0.Add(time.Minute)); !errors.Is(err, smart.ErrReplay) {
			t.Fatalf("replay: err = %v", err)
		}
		if err := st.UseJTI(ctx, "c2", "j1", exp, t0); err != nil {
			t.Fatalf("the same jti from another client: %v", err)
		}
		// Once expired the record may go; a reuse then is refused by exp.
		if err := st.UseJTI(ctx, "c1", "j1", t0.Add(20*time.Minute), t0.Add(10*time.Minute)); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})

	t.Run("Token", func(t *testing.T) {
		st := newStore(t)
		ctx := t.Context()
		if err := st.CreateClient(ctx, client); err != nil {
			t.Fatal(err)
		}
		h := bytes.Repeat([]byte{0xa1}, 32) // the SHA-256 of a token, as stored
		tok := smart.Token{Hash: h, ClientID: "c1", Scopes: sys, Issued: t0, Expires: t0.Add(5 * time.Minute)}
		if err := st.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		got, err := st.TokenByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Hash, h) || got.ClientID != "c1" || got.Scopes.String() != sys.String() ||
			!got.Issued.Equal(t0) || !got.Expires.Equal(tok.Expires) || got.Revoked {
			t.Errorf("TokenByHash = %+v", got)
		}
		other := bytes.Repeat([]byte{0xb2}, 32)
		if _, err := st.TokenByHash(ctx, other); !errors.Is(err, smart.ErrNotFound) {
			t.Errorf("unknown token: err = %v", err)
		}
		if err := st.RevokeToken(ctx, other); !errors.Is(err, smart.ErrNotFound) {
			t.Errorf("revoke unknown token: err = %v", err)
		}
		if err := st.RevokeToken(ctx, h); err != nil {
			t.Fatal(err)
		}
		if got, err := st.TokenByHash(ctx, h); err != nil || !got.Revoked {
			t.Errorf("after revoke: %+v, %v", got, err)
		}
		// Issuing after the first expired may purge it.
		tok2 := smart.Token{Hash: other, ClientID: "c1", Scopes: sys, Issued: t0.Add(time.Hour), Expires: t0.Add(time.Hour + 5*time.Minute)}
		if err := st.PutToken(ctx, tok2); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TokenByHash(ctx, other); err != nil {
			t.Fatal(err)
		}
	})
}
