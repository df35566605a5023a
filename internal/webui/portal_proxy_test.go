package webui_test

import (
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
)

// TestPortalProxy: a parent signs in to the portal with a proxy account
// (linked to a RelatedPerson carrying the proxy grant) and reads the
// child's record, told that they read it as a proxy; sharing choices
// stay the patient's; once the grant is withdrawn the portal says so and
// shows nothing of the record.
func TestPortalProxy(t *testing.T) {
	e := start(t, "sqlite")
	pid := e.loadPatients(t, 1)[0]
	family := familyName(e.patient(t, pid))
	rp := map[string]any{"resourceType": "RelatedPerson", "active": true,
		"patient": map[string]any{"reference": "Patient/" + pid},
		"name":    []any{map[string]any{"family": "Proxy", "given": []any{"Mary"}}},
		"extension": []any{map[string]any{"url": authz.ProxyExtension,
			"extension": []any{map[string]any{"url": "proof", "valueString": "birth certificate seen"}}}}}
	rid := e.Do(t, "POST", "/fhir/RelatedPerson", rp, nil).Want(t, 201).ID()
	mother := e.addAccount(t, identity.User{Username: "mary.proxy", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "RelatedPerson/" + rid}, false)

	tb := newTab(t)
	e.signInPatient(t, tb, mother, "#portal-record")
	if got := tb.text("#patient-name"); !strings.Contains(got, family) {
		t.Fatalf("the proxy's portal shows %q, want the child's family name %q", got, family)
	}
	if got := tb.text("#proxy-notice"); !strings.Contains(got, "proxy") {
		t.Fatalf("no proxy notice: %q", got)
	}
	tb.checkA11y()
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))

	// Sharing choices are the patient's: the page shows, saving is refused.
	tb.ignore(`status of 403 \(Forbidden\)`)
	tb.do(navigate(e.URL+"/portal/consent"), waitCSS("#consent-form"))
	tb.do(submit("#consent-form button[type=submit]", "h1"))
	if got := tb.text("h1"); !strings.Contains(got, "Only the patient") {
		t.Fatalf("a proxy saving sharing choices got %q", got)
	}

	// Withdrawn: the portal says so and shows nothing of the record.
	rp["id"], rp["active"] = rid, false
	e.Do(t, "PUT", "/fhir/RelatedPerson/"+rid, rp, nil).Want(t, 200)
	tb.do(navigate(e.URL+"/portal"), waitCSS("h1"))
	if got := tb.text("h1"); !strings.Contains(got, "not active") {
		t.Fatalf("after withdrawal the portal shows %q", got)
	}
	if body := tb.text("body"); strings.Contains(body, family) {
		t.Fatal("after withdrawal the portal still shows the child's name")
	}
}
