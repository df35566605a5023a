package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// backendKey is a SMART Backend Services key pair, as the penetration
// test made one: EC P-384, its public JWK Set, and assertions signed by
// an independent JOSE implementation (go-jose).
type backendKey struct {
	key  *ecdsa.PrivateKey
	jwks string
}

func newBackendKey(t *testing.T) backendKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return backendKey{key: k, jwks: string(set)}
}

// token asks /oauth2/token for a client_credentials token as client id.
func (k backendKey) token(t *testing.T, s *apitest.Server, id string) *apitest.Response {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: k.key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{s.URL + "/oauth2/token"},
		Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
		"client_assertion_type": {smart.AssertionType}, "client_assertion": {a}}
	return s.Do(t, "POST", "/oauth2/token", form.Encode(), apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/x-www-form-urlencoded"})
}

// wantNoToken: the client gets no token, and is told it is not approved.
func (k backendKey) wantNoToken(t *testing.T, s *apitest.Server, id string) {
	t.Helper()
	r := k.token(t, s, id).Want(t, http.StatusUnauthorized)
	if r.JSON["error"] != "invalid_client" || r.JSON["access_token"] != nil {
		t.Fatalf("token for an unapproved client: %s", r)
	}
	if d, _ := r.JSON["error_description"].(string); !strings.Contains(d, "not approved") {
		t.Errorf("refusal %q does not say the client is not approved", d)
	}
}

var newClientID = regexp.MustCompile(`id="new-client-id">([^<]+)<`)

// consoleRegister is the penetration test's step 3: a security admin's
// console form registering a backend client with system/*.rs. It
// returns the client_id the page shows.
func consoleRegister(t *testing.T, s *apitest.Server, m *session.Manager, u identity.User, k backendKey) string {
	t.Helper()
	sec, _, err := m.Create(t.Context(), u.ID, true, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"csrf": {session.CSRFToken(sec.Reveal())}, "name": {"f8-backend"}, "kind": {"backend"},
		"jwks": {k.jwks}, "scopes": {"system/*.rs"}}
	r := s.Do(t, "POST", "/admin/clients", form.Encode(), apitest.H{"Authorization": apitest.NoAuth,
		"Cookie": web.SessionCookie + "=" + sec.Reveal(), "Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusCreated)
	m2 := newClientID.FindSubmatch(r.Body)
	if m2 == nil {
		t.Fatalf("no client_id on the page: %s", r.Body)
	}
	if !strings.Contains(string(r.Body), `id="awaits-approval"`) {
		t.Errorf("the page does not say the client awaits approval")
	}
	return string(m2[1])
}

// clientRequest is the pending request of client id at
// /admin/api/requests, or nil.
func clientRequest(t *testing.T, s *apitest.Server, as apitest.H, id string) map[string]any {
	t.Helper()
	r := s.Do(t, "GET", "/admin/api/requests", nil, as).Want(t, http.StatusOK)
	cs, _ := r.JSON["client_requests"].([]any)
	for _, x := range cs {
		m, _ := x.(map[string]any)
		if c, _ := m["client"].(map[string]any); c["id"] == id {
			return m
		}
	}
	return nil
}

func alertsAbout(t *testing.T, s *apitest.Server, ref string) map[string]string {
	t.Helper()
	r := s.Do(t, "GET", "/admin/api/alerts", nil, nil).Want(t, http.StatusOK)
	out := map[string]string{}
	as, _ := r.JSON["alerts"].([]any)
	for _, a := range as {
		m, _ := a.(map[string]any)
		if m["ref"] == ref {
			out[m["kind"].(string)], _ = m["user"].(string)
		}
	}
	return out
}

// TestClientTwoPersonRule is the penetration test's finding F2
// (repro/f8_backend_client.py): one security admin registered a SMART
// backend client with system/*.rs in the console, got a token at once
// and read every patient's record. Now the client is pending: no token
// until a second security admin, signed in with a second factor, who
// neither registered it nor requested its approval, approves it; a
// rejected, withdrawn or expired request gives no token.
func TestClientTwoPersonRule(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newSoD(t, s)
		sam := e.account(t, "sec.sam", "", identity.RoleSecurityAdmin)
		bob := e.account(t, "admin.bob", "", identity.RoleSecurityAdmin)
		carol := e.account(t, "admin.carol", "", identity.RoleSecurityAdmin)
		asSam, asBob := e.as(t, sam), e.as(t, bob)
		s.Create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Moore"}}})
		ca := s.App.ClientAdmin()
		k := newBackendKey(t)

		// Steps 1–4 of the reproduction: no token.
		id := consoleRegister(t, s, e.m, sam, k)
		k.wantNoToken(t, s, id)
		wantAudited(t, s, audit.ActionClientRegister, audit.OutcomeSuccess, "Client/"+id)
		wantAudited(t, s, audit.ActionClientGrantRequest, audit.OutcomeSuccess, "Client/"+id)
		if got := alertsAbout(t, s, "Client/"+id); got["client-grant-requested"] != sam.ID {
			t.Errorf("alerts %v, want client-grant-requested by sam", got)
		}
		req := clientRequest(t, s, asBob, id)
		if req == nil {
			t.Fatal("the client is not listed for approval")
		}
		reqID := req["id"].(string)
		if c := req["client"].(map[string]any); c["scopes"] != "system/*.rs" || c["type"] != "backend" || c["registered_by"] != sam.ID || c["approval"] != "pending" {
			t.Errorf("request lists the client as %v", c)
		}

		// The registrar cannot approve it; nor can a service token or a
		// session without a second factor.
		wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asSam), http.StatusForbidden, "separation of duties")
		ev := wantAudited(t, s, audit.ActionClientGrantApprove, audit.OutcomeDenied, "Request/"+reqID)
		if ev.Agent.User != sam.ID {
			t.Errorf("the refused approval is audited for %q", ev.Agent.User)
		}
		wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, nil), http.StatusForbidden, "second factor")
		sec, _, err := e.m.Create(t.Context(), bob.ID, false, "192.0.2.10")
		if err != nil {
			t.Fatal(err)
		}
		noMFA := apitest.H{"Authorization": apitest.NoAuth, "Cookie": web.SessionCookie + "=" + sec.Reveal(), httpapi.CSRFHeader: session.CSRFToken(sec.Reveal())}
		s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, noMFA).Want(t, http.StatusForbidden)
		k.wantNoToken(t, s, id)

		// A second administrator approves: the same key now gets a token
		// that reads /fhir within its scopes.
		r := s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asBob).Want(t, http.StatusOK)
		if r.JSON["approval"] != "approved" || r.JSON["approved_by"] != bob.ID {
			t.Fatalf("approval answered %s", r)
		}
		tok := k.token(t, s, id).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Patient?_summary=count", nil, apitest.H{"Authorization": "Bearer " + tok.JSON["access_token"].(string)}).Want(t, http.StatusOK)
		wantAudited(t, s, audit.ActionClientGrantApprove, audit.OutcomeSuccess, "Client/"+id)
		if got := alertsAbout(t, s, "Client/"+id); got["client-grant-approved"] != bob.ID {
			t.Errorf("alerts %v, want client-grant-approved by bob", got)
		}
		if clientRequest(t, s, asBob, id) != nil {
			t.Error("a decided request is still listed")
		}
		wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, e.as(t, carol)), http.StatusNotFound, "no such client or request")

		// Disabling is final: its tokens stop, and nothing enables it.
		if err := ca.Disable(t.Context(), audit.Agent{User: bob.ID, Session: "ses_b"}, id); err != nil {
			t.Fatal(err)
		}
		k.token(t, s, id).Want(t, http.StatusUnauthorized)

		// Rejected by another admin, or withdrawn by the requester: no token.
		samAgent := audit.Agent{User: sam.ID, Session: "ses_s", Client: "webui"}
		reg := func() string {
			t.Helper()
			sc, _ := scope.ParseSet("system/*.rs")
			id, err := ca.RegisterBackend(t.Context(), samAgent, smart.BackendRegistration{Name: "feed", JWKS: []byte(k.jwks), Scopes: sc})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		for _, who := range []apitest.H{asBob, asSam} {
			id := reg()
			reqID := clientRequest(t, s, asBob, id)["id"].(string)
			s.Do(t, "POST", "/admin/api/requests/"+reqID+"/reject", nil, who).Want(t, http.StatusNoContent)
			wantAudited(t, s, audit.ActionClientGrantReject, audit.OutcomeSuccess, "Client/"+id)
			k.wantNoToken(t, s, id)
			if c, err := ca.Client(t.Context(), id); err != nil || c.Approval != smart.ApprovalRejected {
				t.Fatalf("rejected client %+v %v", c, err)
			}
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, e.as(t, carol)), http.StatusNotFound, "no such")
		}

		// An expired request cannot be approved; the client stays
		// pending until approval is requested again, and then neither
		// the registrar nor the new requester approves it.
		id = reg()
		reqID = clientRequest(t, s, asBob, id)["id"].(string)
		later := ca.WithClock(func() time.Time { return time.Now().Add(smart.ClientRequestTTL + time.Minute) })
		bobAgent, carolAgent := audit.Agent{User: bob.ID, Session: "ses_b"}, audit.Agent{User: carol.ID, Session: "ses_c"}
		if _, err := later.Approve(t.Context(), bobAgent, reqID); !errors.Is(err, smart.ErrApprovalStale) {
			t.Fatalf("approving an expired request: %v, want ErrApprovalStale", err)
		}
		k.wantNoToken(t, s, id)
		again, err := later.RequestApproval(t.Context(), bobAgent, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, self := range []audit.Agent{samAgent, bobAgent} {
			if _, err := later.Approve(t.Context(), self, again.ID); !errors.Is(err, smart.ErrSelfApproval) {
				t.Errorf("approval by %s: %v, want ErrSelfApproval", self.User, err)
			}
		}
		if _, err := later.Approve(t.Context(), carolAgent, again.ID); err != nil {
			t.Fatal(err)
		}
		k.token(t, s, id).Want(t, http.StatusOK)
	})
}

// TestAppTwoPersonRule: an App Launch app registered by one admin
// collects no user's token until a second admin approves it: the
// authorize endpoint does not even show the sign-in page.
func TestAppTwoPersonRule(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newSoD(t, s)
		sam := e.account(t, "sec.sam", "", identity.RoleSecurityAdmin)
		bob := e.account(t, "admin.bob", "", identity.RoleSecurityAdmin)
		ca := s.App.ClientAdmin()
		sc, _ := scope.ParseSet("openid fhirUser launch/patient offline_access patient/*.rs")
		id, err := ca.RegisterApp(t.Context(), audit.Agent{User: sam.ID, Session: "ses_s"},
			smart.AppRegistration{Name: "MyChart Sync", Public: true, RedirectURIs: []string{"https://evil.example/cb"}, Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://evil.example/cb"},
			"scope": {"openid launch/patient patient/*.rs"}, "state": {"st"}, "aud": {s.URL + "/fhir"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		authorize := func() *apitest.Response {
			return s.Do(t, "GET", "/oauth2/authorize?"+q.Encode(), nil, apitest.H{"Authorization": apitest.NoAuth})
		}
		r := authorize()
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "not approved") || r.Header.Get("Location") != "" {
			t.Fatalf("authorize at a pending app: %d %s", r.Status, r.Body)
		}
		ps, err := ca.Requests(t.Context())
		if err != nil || len(ps) != 1 || ps[0].Client.ID != id {
			t.Fatalf("requests %+v %v", ps, err)
		}
		s.Do(t, "POST", "/admin/api/requests/"+ps[0].Request.ID+"/approve", nil, e.as(t, bob)).Want(t, http.StatusOK)
		if r := authorize(); r.Status != http.StatusOK {
			t.Fatalf("authorize at the approved app: %d %s", r.Status, r.Body)
		}
	})
}

// TestClientBreakGlass: the offline CLI's path registers outside the
// rule, usable at once, with an alert naming it; a terminology feed
// needs no approval at all.
func TestClientBreakGlass(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ca := s.App.ClientAdmin()
		k := newBackendKey(t)
		sc, _ := scope.ParseSet("system/*.rs")
		id, err := ca.RegisterBackendBreakGlass(t.Context(), cliAgent, smart.BackendRegistration{Name: "nightly", JWKS: []byte(k.jwks), Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		k.token(t, s, id).Want(t, http.StatusOK)
		if got := alertsAbout(t, s, "Client/"+id); got["client-grant-break-glass"] != "cli" {
			t.Errorf("alerts %v, want client-grant-break-glass", got)
		}
		// Without --break-glass the CLI (no administrator's account) is refused.
		if _, err := ca.RegisterBackend(t.Context(), cliAgent, smart.BackendRegistration{Name: "x", JWKS: []byte(k.jwks), Scopes: sc}); !errors.Is(err, smart.ErrRequester) {
			t.Fatalf("CLI registration without break glass: %v, want ErrRequester", err)
		}
		term, _ := scope.ParseSet("system/ValueSet.rs system/CodeSystem.rs")
		id, err = ca.RegisterBackend(t.Context(), cliAgent, smart.BackendRegistration{Name: "terminology", JWKS: []byte(k.jwks), Scopes: term})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := ca.Client(t.Context(), id); err != nil || c.Approval != smart.ApprovalNotNeeded {
			t.Fatalf("terminology feed %+v %v", c, err)
		}
		cs, err := ca.List(t.Context(), 10)
		if err != nil || len(cs) != 2 || !slices.ContainsFunc(cs, func(c smart.Client) bool { return c.Approval == smart.ApprovalBreakGlass }) {
			t.Fatalf("clients %+v %v (the refused one must not be stored)", cs, err)
		}
	})
}
