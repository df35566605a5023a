package webui_test

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/identity"
)

// signInPatient signs a patient account in (password only: patients
// have no second factor) and waits for landing.
func (e *env) signInPatient(t *testing.T, tb *tab, u *user, landing string) {
	t.Helper()
	tb.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", u.Username, "#password", u.Password),
		submit("#login-form button[type=submit]", landing))
}

// waitText waits until the element css holds want (a script updates it).
func (tb *tab) waitText(css, want string) string {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = eval[string](tb, `(function(){var e=document.querySelector(`+jsString(css)+`); return e ? e.textContent : ""})()`)
		if strings.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.t.Fatalf("%s holds %q, want %q", css, got, want)
	return got
}

// openVisit finds the visit of "who accessed my record" whose line holds
// every one of needles, opens its entries and returns the log position
// of its newest entry ("" if none matches).
func (tb *tab) openVisit(needles ...string) string {
	tb.t.Helper()
	js, err := json.Marshal(needles)
	if err != nil {
		tb.t.Fatal(err)
	}
	id := eval[string](tb, `(function(){
	  var rows = document.querySelectorAll("#access-list tr.access-group"), want = `+string(js)+`;
	  for (var i = 0; i < rows.length; i++) {
	    var t = rows[i].textContent;
	    if (want.every(function(w){ return t.indexOf(w) >= 0 })) {
	      rows[i].querySelector("details.visit-entries").open = true;
	      return rows[i].querySelector("tr.access-row").dataset.id;
	    }
	  }
	  return "";
	})()`)
	if id != "" {
		tb.do(chromedp.WaitVisible(chromedp.CSS("#access-" + id + " button.verify")))
	}
	return id
}

// TestPortalRecordAndAccess: a patient signs in and lands on their own
// record; a clinician's chart read shows in "who accessed my record" with
// the clinician's name, role and purpose; Verify checks the entry's
// proof in the browser ("Verified"), and a tampered proof fails.
func TestPortalRecordAndAccess(t *testing.T) {
	e := start(t, "sqlite")
	ids := e.loadPatients(t, 1)
	pid := ids[0]
	doc := e.addUser(t, "dr.portal", "Dana Doctor", true, identity.RolePhysician)
	// Dana acts for a named clinic: the patient sees it next to her name.
	org := e.Do(t, "POST", "/fhir/Organization", map[string]any{"resourceType": "Organization", "name": "Riverside Family Clinic"}, nil).Want(t, 201).ID()
	e.Do(t, "POST", "/fhir/PractitionerRole", map[string]any{"resourceType": "PractitionerRole", "active": true,
		"practitioner": map[string]any{"reference": doc.FHIRUser}, "organization": map[string]any{"reference": "Organization/" + org}}, nil).Want(t, 201)
	pat := e.addAccount(t, identity.User{Username: "patient.portal", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)
	family := familyName(e.patient(t, pid))

	// The clinician opens the chart.
	tbd := newTab(t)
	e.signIn(t, tbd, doc, "#patient-search")
	tbd.do(navigate(e.URL+"/patients/"+pid), waitCSS("#patient-name"))

	tb := newTab(t)
	e.signInPatient(t, tb, pat, "#portal-record")
	if got := tb.text("#patient-name"); !strings.Contains(got, family) {
		t.Fatalf("my record shows %q, want the family name %q", got, family)
	}
	if n := eval[int](tb, `document.querySelectorAll("#problems tr, #observations tr").length`); n == 0 {
		t.Errorf("my record shows no problems or observations")
	}
	tb.checkA11y()

	// Download my data: the whole compartment as one Bundle, an attachment.
	tb.do(navigate(e.URL+"/portal/download"), waitCSS("#download-link"))
	tb.checkA11y()
	got := eval[string](tb, `(async function(){
	  var r = await fetch(document.getElementById("download-link").href);
	  var b = await r.json();
	  var pats = b.entry.filter(function(e){ return e.resource.resourceType === "Patient" }).map(function(e){ return e.resource.id });
	  return [r.status, r.headers.get("Content-Disposition"), b.resourceType, b.type, pats.join(","), b.entry.length > 10].join("|");
	})()`)
	if want := `200|attachment; filename="my-health-record.json"|Bundle|collection|` + pid + `|true`; got != want {
		t.Errorf("download: %s, want %s", got, want)
	}

	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	tb.checkA11y()
	// The clinician's chart view is one visit (a read and a search per
	// section, seconds apart): one line with a count, its entries under
	// it, each with its own log position and Verify.
	visit := eval[string](tb, `(function(){
	  var rows = document.querySelectorAll("#access-list tr.access-group");
	  for (var i = 0; i < rows.length; i++) {
	    if (rows[i].querySelector(".who-cell").textContent.indexOf("Dana Doctor") >= 0 && rows[i].textContent.indexOf("your care") >= 0) return rows[i].id;
	  }
	  return "";
	})()`)
	if visit == "" {
		t.Fatalf("no access by the clinician in the list: %s", tb.text("#access-list"))
	}
	if n := eval[int](tb, `document.querySelectorAll("#`+visit+` tr.access-row").length`); n < 2 {
		t.Errorf("the chart view is %d entries in its visit, want one visit of a read and the section searches", n)
	}
	if n := eval[int](tb, `document.querySelectorAll("#access-list tr.access-group .who-cell").length - document.querySelectorAll("#access-list tr.access-group").length`); n != 0 {
		t.Errorf("visit rows without a who cell: %d", n)
	}
	// The patient's own views are left out by default (the page's own
	// reads of the log are the patient's); "include my own views" shows them.
	if got := tb.text("#access-list"); strings.Contains(got, "You") {
		t.Errorf("the default list shows the patient's own views: %s", got)
	}
	if got := tb.text("#" + visit); !strings.Contains(got, "physician") || !regexp.MustCompile(`(searched|looked at) your `).MatchString(got) {
		t.Errorf("visit %q: want the role and what was done in words", got)
	}
	if got := tb.text("#" + visit); !strings.Contains(got, "Riverside Family Clinic") {
		t.Errorf("visit %q: want the clinician's organisation", got)
	}
	// Times are in the browser's zone (localtime.js), the server's as a title.
	if n := eval[int](tb, `document.querySelectorAll("#access-list time.local-time:not([data-localised])").length`); n != 0 {
		t.Errorf("%d times not shown in the browser's zone", n)
	}
	tb.do(chromedp.Click(chromedp.CSS("#f-own")), submit("#access-filter button[type=submit]", "#clear-filter"))
	if got := tb.text("#access-list"); !strings.Contains(got, "You") || !strings.Contains(got, "at your request") {
		t.Errorf("with own views included, the patient's own reads are missing: %s", got)
	}
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#"+visit))
	row := eval[string](tb, `document.querySelector("#`+visit+` tr.access-row").dataset.id`)
	eval[bool](tb, `document.querySelector("#`+visit+` details.visit-entries").open = true`)
	tb.do(chromedp.WaitVisible(chromedp.CSS("#access-" + row + " button.verify")))

	// Verify in the browser. The newest entries may not be in a signed
	// checkpoint for a moment: the 404 of an early try is expected.
	tb.ignore(`status of 404 \(Not Found\) https://[^ ]+/\$proof`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		tb.do(chromedp.Click(chromedp.CSS("#access-" + row + " button.verify")))
		got := tb.waitText("#verify-"+row, "erified")
		if strings.HasPrefix(got, "Verified") {
			break
		}
		if !strings.Contains(got, "not be signed yet") || time.Now().After(deadline) {
			t.Fatalf("verify: %q", got)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A patient's proof holds their view of the entry and its leaf hash:
	// never the entry itself, its salt, a staff address or a session.
	got = eval[string](tb, `(async function(){
	  var p = await (await fetch("/fhir/AuditEvent/`+row+`/$proof")).json();
	  var names = p.parameter.map(function(x){ return x.name }).join(",");
	  var view = atob(p.parameter.filter(function(x){ return x.name === "view" })[0].valueBase64Binary);
	  var proof = p.parameter.filter(function(x){ return x.name === "proof" })[0].valueString;
	  return names + "|" + (proof.indexOf("\nextra ") >= 0) + "|" + (view.indexOf("address") >= 0 || view.indexOf("session") >= 0) + "|" + (view.indexOf("Patient/`+pid+`") >= 0);
	})()`)
	if want := "index,view,leafHash,proof,verifierKey|false|false|true"; got != want {
		t.Errorf("a patient's proof: %s, want %s", got, want)
	}

	// Tampering with any part of the proof fails, and says what failed.
	for name, tc := range map[string]struct{ tamper, want string }{
		"event time": {`ev[10] ^= 1`, "the proven event's time"},
		"leaf hash":  {`lh[0] ^= 1`, "not in the signed log"},
		"root":       {`proof = proof.replace(/\n\n([^\n]*)\n([0-9]+)\n([A-Za-z0-9+\/]{5})/, function(m, o, s, r){ return "\n\n" + o + "\n" + s + "\n" + (r[0] === "A" ? "B" : "A") + r.slice(1); })`, "signature is not valid"},
		"path":       {`proof = proof.replace(/\nindex ([0-9]+)\n([A-Za-z0-9+\/])/, function(m, i, c){ return "\nindex " + i + "\n" + (c === "A" ? "B" : "A"); })`, "not in the signed log"},
		"other key":  {`vk = "other+00000000+AQ" + vk.slice(vk.length - 42)`, "different signing key"},
	} {
		got := eval[string](tb, `(async function(){
		  var row = document.getElementById("access-`+row+`");
		  var p = await (await fetch("/fhir/AuditEvent/`+row+`/$proof")).json();
		  var get = function(n){ return p.parameter.filter(function(x){ return x.name === n })[0] };
		  var bytes = function(b){ var bin = atob(b), out = new Uint8Array(bin.length); for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i); return out };
		  var str = function(a){ var s = ""; for (var j = 0; j < a.length; j++) s += String.fromCharCode(a[j]); return btoa(s) };
		  var evp = get("view"), lhp = get("leafHash"), pp = get("proof"), vkp = get("verifierKey");
		  var ev = bytes(evp.valueBase64Binary), lh = bytes(lhp.valueBase64Binary);
		  var proof = pp.valueString, vk = vkp.valueString;
		  `+tc.tamper+`;
		  evp.valueBase64Binary = str(ev); lhp.valueBase64Binary = str(lh); pp.valueString = proof; vkp.valueString = vk;
		  var res = await window.phivaultVerify.check(p, {id: row.dataset.id, time: row.dataset.time, action: row.dataset.action,
		    verifierKey: document.getElementById("portal-access").dataset.verifierKey});
		  return (res.ok ? "OK " : "") + res.message;
		})()`)
		if strings.HasPrefix(got, "OK") || !strings.Contains(got, tc.want) {
			t.Errorf("tampered %s: %q, want a failure naming %q", name, got, tc.want)
		}
	}

	// Download proof: a JSON bundle saved from a blob, no error shown.
	// The button records the outcome in data-download once the proof was
	// fetched and saved (or not): wait for that, not for a fixed time.
	tb.do(chromedp.Click(chromedp.CSS("#access-" + row + " button.proof-download")))
	tb.do(chromedp.WaitVisible(chromedp.CSS("#access-" + row + " button.proof-download[data-download]")))
	if got := tb.text("#verify-" + row); strings.Contains(got, "could not be downloaded") ||
		eval[string](tb, `document.querySelector("#access-`+row+` button.proof-download").dataset.download`) != "saved" {
		t.Errorf("download proof: %q", got)
	}

	// An event that did not touch this record cannot be reported: 404.
	tb.ignore(`status of 404 \(Not Found\) https://[^ ]+/portal/access/0/report$`)
	tb.do(navigate(e.URL+"/portal/access/0/report"), waitCSS("#error-message"))
	if got := tb.text("#page-title"); got != "Not found" {
		t.Errorf("report of another record's event: %q", got)
	}

	// verify.js's inclusion check against golang.org/x/mod/sumdb/tlog
	// for every leaf of trees of 1 to 33 leaves (odd sizes, last leaf,
	// powers of two), and a wrong path fails.
	type vector struct {
		Leaf, Root  string
		Index, Size int64
		Path        []string
	}
	var vs []vector
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	leafOf := func(i int64) tlog.Hash { return tlog.RecordHash([]byte{byte(i), byte(i >> 8)}) }
	for n := int64(1); n <= 33; n++ {
		hs, err := tlog.StoredHashesForRecordHash(n-1, leafOf(n-1), hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
		root, err := tlog.TreeHash(n, hr)
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < n; i++ {
			p, err := tlog.ProveRecord(n, i, hr)
			if err != nil {
				t.Fatal(err)
			}
			leaf := leafOf(i)
			v := vector{Leaf: base64.StdEncoding.EncodeToString(leaf[:]), Root: base64.StdEncoding.EncodeToString(root[:]), Index: i, Size: n}
			for _, h := range p {
				v.Path = append(v.Path, base64.StdEncoding.EncodeToString(h[:]))
			}
			vs = append(vs, v)
		}
	}
	js, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	res := eval[string](tb, `(async function(){
	  var V = window.phivaultVerify, vs = `+string(js)+`, bad = [];
	  var eq = function(a, b){ return a.length === b.length && a.every(function(x, i){ return x === b[i] }) };
	  for (var k = 0; k < vs.length; k++) {
	    var v = vs[k], path = (v.Path || []).map(function(h){ return V.b64(h, "h") });
	    var root = await V.rootFromPath(V.b64(v.Leaf, "l"), BigInt(v.Index), BigInt(v.Size), path);
	    if (!eq(Array.from(root), Array.from(V.b64(v.Root, "r")))) bad.push(v.Index + "/" + v.Size);
	    if (path.length > 0) {
	      path[0] = path[0].slice(); path[0][0] ^= 1;
	      var wrong = await V.rootFromPath(V.b64(v.Leaf, "l"), BigInt(v.Index), BigInt(v.Size), path).catch(function(){ return new Uint8Array(32) });
	      if (eq(Array.from(wrong), Array.from(V.b64(v.Root, "r")))) bad.push("tampered " + v.Index + "/" + v.Size);
	    }
	  }
	  return vs.length + " " + bad.join(",");
	})()`)
	if want := strconv.Itoa(len(vs)) + " "; res != want {
		t.Errorf("verify.js inclusion vectors: %q, want %q (failures listed)", res, want)
	}

	// "I don't recognise this access": the report reaches the privacy
	// officer with its comment, who closes it.
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#access-"+row))
	eval[bool](tb, `document.querySelector("#`+visit+` details.visit-entries").open = true`)
	tb.do(chromedp.Click(chromedp.CSS("#access-"+row+" a.report")), waitCSS("#report-form"))
	tb.checkA11y()
	tb.do(fill("#report-comment", "I was not at that clinic <b>then</b>"), submit("#report-form button[type=submit]", "#report-sent"))

	po := e.addUser(t, "privacy.officer", "Priya Office", true, identity.RolePrivacyOfficer)
	tbp := newTab(t)
	e.signIn(t, tbp, po, "#home")
	tbp.do(navigate(e.URL+"/privacy/reports"), waitCSS("#reports-list"))
	tbp.checkA11y()
	if got := tbp.text("#reports-list .report-leaf"); got != row {
		t.Errorf("reported log position %q, want %q", got, row)
	}
	if got := tbp.text("#reports-list .report-comment"); got != "I was not at that clinic <b>then</b>" {
		t.Errorf("report comment %q (escaped text expected)", got)
	}
	tbp.do(fill(".close-report textarea", "Checked with the clinic: the visit took place."),
		submit(".close-report button[type=submit]", "#report-closed"))
	if n := eval[int](tbp, `document.querySelectorAll("#reports-list tr.report-row").length`); n != 0 {
		t.Errorf("%d open reports after closing, want 0", n)
	}
	// A patient may not see the privacy office's page.
	tb.ignore(`status of 403 \(Forbidden\) https://[^ ]+/privacy/reports$`)
	tb.do(navigate(e.URL+"/privacy/reports"), waitCSS("#error-message"))
}

// TestPortalConsent: the patient blocks a clinician who accessed the
// record and hides a sensitive category; the consent in force is shown
// in words, and the clinician's next chart request is refused.
func TestPortalConsent(t *testing.T) {
	e := start(t, "sqlite")
	pid := e.loadPatients(t, 1)[0]
	doc := e.addUser(t, "dr.blocked", "Bo Blocked", true, identity.RolePhysician)
	pat := e.addAccount(t, identity.User{Username: "patient.consent", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)

	tbd := newTab(t)
	tbd.ignore(`status of (403 \(Forbidden\)|404 \(Not Found\))`) // the refusal this test asks for
	e.signIn(t, tbd, doc, "#patient-search")
	tbd.do(navigate(e.URL+"/patients/"+pid), waitCSS("#patient-name"))

	tb := newTab(t)
	e.signInPatient(t, tb, pat, "#portal-record")
	tb.do(navigate(e.URL+"/portal/consent"), waitCSS("#consent-form"))
	tb.checkA11y()
	if got := tb.text("#consent-summary"); !strings.Contains(got, "not made any sharing choices") {
		t.Errorf("summary before any choice: %q", got)
	}
	box := eval[string](tb, `(function(){
	  var ls = document.querySelectorAll("#consent-form label");
	  for (var i = 0; i < ls.length; i++) if (ls[i].textContent === "Bo Blocked") return ls[i].htmlFor;
	  return "";
	})()`)
	if box == "" {
		t.Fatalf("the clinician who opened the chart is not offered for blocking")
	}
	tb.do(chromedp.Click(chromedp.CSS("#"+box)), chromedp.Click(chromedp.CSS("#cat-PSY-withhold")),
		submit("#consent-form button[type=submit]", "#consent-saved"))
	got := tb.text("#consent-summary")
	if !strings.Contains(got, "Bo Blocked may not see any of your record") || !strings.Contains(got, "Hidden from everyone, your care team included: mental health") {
		t.Errorf("summary after saving: %q", got)
	}
	if !eval[bool](tb, `document.getElementById("`+box+`").checked && document.getElementById("cat-PSY-withhold").checked`) {
		t.Errorf("the form does not show the saved choices")
	}

	// The patient still sees their own record, hidden categories included.
	tb.do(navigate(e.URL+"/portal"), waitCSS("#patient-name"))

	// The blocked clinician is refused the chart (the consent's denial
	// is concealed: the record answers as if it did not exist).
	tbd.do(navigate(e.URL+"/patients/"+pid), waitCSS("#page-title"))
	if eval[int](tbd, `document.querySelectorAll("#patient-name").length`) != 0 {
		t.Fatalf("the blocked clinician still sees the chart")
	}
}
