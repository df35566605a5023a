package webui_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
)

// publicJWKS is the public JWK Set of a fresh EC P-384 key.
func publicJWKS(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes() // uncompressed point: 0x04 ‖ X ‖ Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set, err := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-384", "kid": "k1", "alg": "ES384", "use": "sig",
		"x": b64(pub[1:49]), "y": b64(pub[49:])}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(set)
}

// TestAdminClientApproval is the penetration test's finding F2 in the
// console: a security admin registers a backend client with system/*.rs
// and is told it waits for approval; the Pending approvals page offers
// them no approval, only a withdrawal; a second security admin approves
// it there. A request can be rejected, and an expired one put up again
// from the clients page. Every step is audited from the web UI.
func TestAdminClientApproval(t *testing.T) {
	e := start(t, "sqlite")
	sam := e.addUser(t, "sec.sam", "Sam Secadmin", true, identity.RoleSecurityAdmin)
	bob := e.addUser(t, "sec.bob", "Bob Second", true, identity.RoleSecurityAdmin)
	ca := e.App.ClientAdmin()

	ts := newTab(t)
	e.signIn(t, ts, sam, "#home")
	ts.do(navigate(e.URL+"/admin/clients"), waitCSS("#client-form"),
		fill("#c-name", "f8-backend", "#c-jwks", publicJWKS(t), "#c-scopes", "system/*.rs"),
		chromedp.Click(chromedp.CSS("#kind-backend")), submit("#client-form button[type=submit]", "#awaits-approval"))
	ts.checkA11y()
	cid := ts.text("#new-client-id")
	row := `[...document.querySelectorAll("#clients tbody tr")].find(tr => tr.textContent.includes(` + jsString(cid) + `))`
	if got := eval[string](ts, row+`.querySelector(".client-approval").textContent`); !strings.Contains(got, "waiting for approval") {
		t.Errorf("the new client's approval reads %q", got)
	}
	if c, err := ca.Client(t.Context(), cid); err != nil || c.Approval != smart.ApprovalPending {
		t.Fatalf("registered client %+v %v, want pending", c, err)
	}

	// The registrar is offered no approval of their own client.
	ts.do(navigate(e.URL+"/admin/requests"), waitCSS("#client-requests"))
	ts.checkA11y()
	if n := eval[int](ts, `document.querySelectorAll("#client-requests .approve-form").length`); n != 0 {
		t.Errorf("the registrar is offered %d approvals of their own client", n)
	}
	if got := ts.text("#client-requests"); !strings.Contains(got, cid) || !strings.Contains(got, "system/*.rs") || !strings.Contains(got, "Withdraw") {
		t.Errorf("pending clients %q", got)
	}

	// A second administrator approves it.
	tb := newTab(t)
	e.signIn(t, tb, bob, "#home")
	tb.do(navigate(e.URL+"/admin/requests"), waitCSS("#client-requests .approve-form"))
	rid := eval[string](tb, `[...document.querySelectorAll("#client-requests tbody tr")].find(tr => tr.textContent.includes(`+jsString(cid)+`)).id`)
	tb.do(submit("#"+rid+" .approve-form button", "#done"))
	if got := tb.text("#done"); !strings.Contains(got, "Approved") {
		t.Errorf("after approving: %q", got)
	}
	ts.do(navigate(e.URL+"/admin/clients"), waitCSS("#clients"))
	if got := eval[string](ts, row+`.querySelector(".client-approval").textContent`); !strings.Contains(got, "approved by sec.bob") {
		t.Errorf("the approved client's approval reads %q", got)
	}
	if c, err := ca.Client(t.Context(), cid); err != nil || c.Approval != smart.ApprovalApproved || !c.Active() {
		t.Fatalf("approved client %+v %v", c, err)
	}

	// An app: rejected by the second administrator.
	ts.do(fill("#c-name", "Sync app", "#c-jwks", "", "#c-scopes", "openid fhirUser patient/*.rs", "#c-redirects", "https://sync.example/cb"),
		chromedp.Click(chromedp.CSS("#kind-public")), submit("#client-form button[type=submit]", "#awaits-approval"))
	app := ts.text("#new-client-id")
	tb.do(navigate(e.URL+"/admin/requests"), waitCSS("#client-requests .approve-form"))
	rid = eval[string](tb, `[...document.querySelectorAll("#client-requests tbody tr")].find(tr => tr.textContent.includes(`+jsString(app)+`)).id`)
	tb.do(submit("#"+rid+" .reject-form button", "#done"))
	if got := tb.text("#done"); !strings.Contains(got, "Rejected") {
		t.Errorf("after rejecting: %q", got)
	}
	if c, err := ca.Client(t.Context(), app); err != nil || c.Approval != smart.ApprovalRejected {
		t.Fatalf("rejected app %+v %v", c, err)
	}

	// A request that expired: the clients page offers a new one, which
	// the second administrator then approves.
	samID := ""
	for _, x := range mustList(t, e) {
		if x.Username == sam.Username {
			samID = x.ID
		}
	}
	past := ca.WithClock(func() time.Time { return time.Now().Add(-smart.ClientRequestTTL - time.Hour) })
	sc, err := scope.ParseSet("system/Observation.rs")
	if err != nil {
		t.Fatal(err)
	}
	stale, err := past.RegisterBackend(t.Context(), audit.Agent{User: samID, Session: "ses_s", Client: "webui"},
		smart.BackendRegistration{Name: "late feed", JWKSURL: "https://keys.example/late.json", Scopes: sc})
	if err != nil {
		t.Fatal(err)
	}
	ts.do(navigate(e.URL+"/admin/clients"), waitCSS("#clients .request-client"))
	staleRow := `[...document.querySelectorAll("#clients tbody tr")].find(tr => tr.textContent.includes(` + jsString(stale) + `))`
	if got := eval[string](ts, staleRow+`.querySelector(".client-approval").textContent`); !strings.Contains(got, "expired") {
		t.Errorf("the stale client's approval reads %q", got)
	}
	eval[bool](ts, staleRow+`.querySelector(".request-client button").id = "request-stale"; true`)
	ts.do(submit("#request-stale", "#done"))
	if got := ts.text("#done"); !strings.Contains(got, "Approval requested") {
		t.Errorf("after requesting again: %q", got)
	}
	tb.do(navigate(e.URL+"/admin/requests"), waitCSS("#client-requests .approve-form"))
	rid = eval[string](tb, `[...document.querySelectorAll("#client-requests tbody tr")].find(tr => tr.textContent.includes(`+jsString(stale)+`)).id`)
	tb.do(submit("#"+rid+" .approve-form button", "#done"))
	if c, err := ca.Client(t.Context(), stale); err != nil || c.Approval != smart.ApprovalApproved {
		t.Fatalf("re-requested client %+v %v", c, err)
	}

	// Every step is audited from the web UI, with its actor.
	bobID := ""
	for _, x := range mustList(t, e) {
		if x.Username == bob.Username {
			bobID = x.ID
		}
	}
	want := map[string][]audit.Action{
		samID: {audit.ActionClientRegister, audit.ActionClientGrantRequest},
		bobID: {audit.ActionClientGrantApprove, audit.ActionClientGrantReject},
	}
	got := map[string]map[audit.Action]bool{samID: {}, bobID: {}}
	for _, ev := range e.auditEvents(t) {
		if got[ev.Agent.User] != nil && ev.Agent.Client == "webui" && ev.Outcome == audit.OutcomeSuccess && ev.Agent.Session != "" {
			got[ev.Agent.User][ev.Action] = true
		}
	}
	for who, acts := range want {
		for _, a := range acts {
			if !got[who][a] {
				t.Errorf("no audited %s by %s from the web UI", a, who)
			}
		}
	}
}
