package smart

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

func (m *memStore) setApproval(id string, a ClientApproval) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.clients[id]
	c.Approval = a
	m.clients[id] = c
}

func TestNeedsApproval(t *testing.T) {
	for _, tc := range []struct {
		typ    ClientType
		scopes string
		want   bool
	}{
		{Backend, "system/*.rs", true}, // the penetration test's client (F2)
		{Backend, "system/Patient.rs", true},
		{Backend, "system/Observation.cruds", true},
		{Backend, "system/Binary.r", true},           // outside the compartment, may hold clinical content
		{Backend, "system/Provenance.rs", true},      // names patients' records
		{Backend, "system/PractitionerRole.u", true}, // re-pointing a role gives a treatment relationship
		{Backend, "system/Organization.rs", true},    // directory: not a knowledge type
		{Backend, "system/ValueSet.cruds", true},     // writes
		{Backend, "system/CodeSystem.rs system/Patient.s", true},
		{Backend, "system/CodeSystem.rs system/ValueSet.read", false},
		{Backend, "system/StructureDefinition.s", false},
		{Backend, "", true}, // no scope: fail closed
		{Public, "user/CodeSystem.rs", true},
		{Public, "openid fhirUser launch/patient patient/*.rs", true},
		{Confidential, "user/*.rs", true},
		{ClientType("other"), "system/CodeSystem.rs", true},
	} {
		set := scope.Set{}
		if tc.scopes != "" {
			set = mustScopes(t, tc.scopes)
		}
		if got := (Client{Type: tc.typ, Scopes: set}).NeedsApproval(); got != tc.want {
			t.Errorf("%s %q: NeedsApproval %v, want %v", tc.typ, tc.scopes, got, tc.want)
		}
	}
}

func TestApprovalStates(t *testing.T) {
	usable := map[ClientApproval]bool{ApprovalApproved: true, ApprovalNotNeeded: true, ApprovalBreakGlass: true, ApprovalLegacy: true,
		ApprovalPending: false, ApprovalRejected: false, "": false, "Approved": false, "approved ": false}
	for a, want := range usable {
		if a.Usable() != want {
			t.Errorf("%q.Usable() = %v, want %v", a, a.Usable(), want)
		}
		if (Client{Approval: a}).Active() != want || (Client{Approval: a, Disabled: true}).Active() {
			t.Errorf("%q: Active wrong", a)
		}
	}
	if !ApprovalPending.Valid() || !ApprovalRejected.Valid() || ClientApproval("").Valid() || ClientApproval("x").Valid() {
		t.Error("Valid wrong")
	}
}

// TestRegistryApproval: the registry stores each client in the state
// the two-person rule gives it, and accepts no other default.
func TestRegistryApproval(t *testing.T) {
	testKeys(t)
	set := jwks(t, map[string]any{"k": &ecKey.PublicKey})
	for _, a := range []ClientApproval{ApprovalApproved, ApprovalNotNeeded, ApprovalLegacy, ApprovalRejected, "x"} {
		if _, err := NewRegistry(newMemStore(), RegistryOptions{Approval: a}); err == nil {
			t.Errorf("NewRegistry accepted Approval %q", a)
		}
	}
	for _, tc := range []struct {
		name     string
		approval ClientApproval // the registry's
		scopes   string
		app      bool
		want     ClientApproval
	}{
		{"backend everything", "", "system/*.rs", false, ApprovalPending},
		{"backend everything, break glass", ApprovalBreakGlass, "system/*.rs", false, ApprovalBreakGlass},
		{"terminology feed", "", "system/ValueSet.rs", false, ApprovalNotNeeded},
		{"terminology feed, break glass", ApprovalBreakGlass, "system/ValueSet.rs", false, ApprovalNotNeeded},
		{"app", ApprovalPending, "openid fhirUser user/*.rs", true, ApprovalPending},
		{"app, break glass", ApprovalBreakGlass, "patient/*.rs", true, ApprovalBreakGlass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			reg, err := NewRegistry(st, RegistryOptions{Approval: tc.approval, RegisteredBy: "usr_alice"})
			if err != nil {
				t.Fatal(err)
			}
			var id string
			if tc.app {
				id, err = reg.RegisterApp(t.Context(), AppRegistration{Name: "app", Public: true, RedirectURIs: []string{"https://a.example/cb"}, Scopes: mustScopes(t, tc.scopes)})
			} else {
				id, err = reg.RegisterBackend(t.Context(), BackendRegistration{Name: "feed", JWKS: set, Scopes: mustScopes(t, tc.scopes)})
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := st.Client(t.Context(), id)
			if err != nil || c.Approval != tc.want || c.RegisteredBy != "usr_alice" || c.ApprovedBy != "" {
				t.Fatalf("stored %q by %q (%v), want %q by usr_alice", c.Approval, c.RegisteredBy, err, tc.want)
			}
		})
	}
}

// TestUnapprovedClientGetsNothing is the penetration test's finding F2
// at the token server: a backend client whose registration is pending,
// rejected or in a state the server does not know holds a valid key
// and gets no token (nor introspection, nor revocation), and a token
// somehow stored for it is not accepted; once approved it gets one.
func TestUnapprovedClientGetsNothing(t *testing.T) {
	for _, a := range []ClientApproval{ApprovalPending, ApprovalRejected, "", "approved?"} {
		t.Run(string(a), func(t *testing.T) {
			e := newEnv(t)
			e.store.setApproval(e.client, a)
			r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client)), "system/*.rs"))
			if r.code != http.StatusUnauthorized || r.str("error") != "invalid_client" || r.str("access_token") != "" {
				t.Fatalf("token for a %q client: %d %v", a, r.code, r.body)
			}
			if !strings.Contains(r.str("error_description"), "not approved") {
				t.Errorf("description %q does not say why", r.str("error_description"))
			}
			if len(e.store.tokens) != 0 {
				t.Fatal("a token was stored")
			}
			for _, path := range []string{IntrospectPath, RevokePath} {
				f := form("token", "pva_x", "client_assertion_type", AssertionType, "client_assertion", sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client)))
				h := e.srv.IntrospectHandler()
				if path == RevokePath {
					h = e.srv.RevokeHandler()
				}
				if r := post(t, h, path, f); r.code != http.StatusUnauthorized {
					t.Errorf("%s for a %q client: %d %v", path, a, r.code, r.body)
				}
			}
			// A token of the client (stored by any means) is refused.
			secret := AccessTokenPrefix + strings.Repeat("A", accessTokenLen-len(AccessTokenPrefix))
			h := sha256.Sum256([]byte(secret))
			now := e.clock.Now()
			if err := e.store.PutToken(t.Context(), Token{Hash: h[:], ClientID: e.client, Scopes: mustScopes(t, "system/*.rs"), Issued: now, Expires: now.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.srv.ValidateAccessToken(t.Context(), secret); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("a token of a %q client: %v, want ErrInvalidToken", a, err)
			}
			// Approved by a second administrator: the same key works.
			e.store.setApproval(e.client, ApprovalApproved)
			e.token("system/*.rs")
		})
	}
}

// TestUnapprovedAppGetsNothing: no user is sent to sign in to an app
// that is not approved, and a public app's code exchange is refused as
// an unknown client's.
func TestUnapprovedAppGetsNothing(t *testing.T) {
	for _, a := range []ClientApproval{ApprovalPending, ApprovalRejected, ""} {
		e := newEnv(t)
		if err := e.store.CreateClient(t.Context(), Client{ID: "app", Name: "app", Type: Public, RedirectURIs: []string{"https://app.example.org/cb"},
			Scopes: mustScopes(t, "openid launch/patient patient/*.rs"), Approval: a}); err != nil {
			t.Fatal(err)
		}
		var ae *AuthorizeError
		if _, _, err := e.srv.Authorize(t.Context(), goodAuthorize()); !errors.As(err, &ae) || ae.Redirect {
			t.Errorf("authorize at a %q app: %v, want an error page", a, err)
		}
		if _, err := e.srv.auth.launchClient(t.Context(), form("client_id", "app")); !errors.Is(err, ErrInvalidClient) {
			t.Errorf("code exchange of a %q public app: %v, want invalid_client", a, err)
		}
		e.store.setApproval("app", ApprovalApproved)
		if _, err := e.srv.auth.launchClient(t.Context(), form("client_id", "app")); err != nil {
			t.Errorf("approved public app: %v", err)
		}
	}
}
