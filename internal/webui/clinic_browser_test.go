package webui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// TestClinicianDay walks a physician's day in Chromium: the worklist on
// the start page, a chart opened from it, a note saved as a draft and
// signed, an addendum to it, the chart in "Recently opened", then a
// patient outside their care found by name and opened by breaking the
// glass, under the strict CSP and with no accessibility defect.
func TestClinicianDay(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.day", "Dana Day", true, identity.RolePhysician)
	mine := e.storePatient(t, "Daywalker", "1966-06-06", nil)
	if _, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "CareTeam", "status": "active", "name": "Cardiology ward",
		"subject":     map[string]any{"reference": "Patient/" + mine},
		"participant": []any{map[string]any{"member": map[string]any{"reference": doc.FHIRUser}}}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "Encounter", "status": "in-progress",
		"class":       map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
		"subject":     map[string]any{"reference": "Patient/" + mine},
		"period":      map[string]any{"start": time.Now().Add(-26 * time.Hour).UTC().Format(time.RFC3339)},
		"participant": []any{map[string]any{"individual": map[string]any{"reference": doc.FHIRUser}}}}, ""); err != nil {
		t.Fatal(err)
	}
	stranger := e.storePatient(t, "Outlander", "1977-07-07", nil)
	e.document(t, mine, "Wound photo", "image/png", tinyPNG(t), "application/pdf", []byte(minimalPDF))

	tb := newTab(t)
	tb.ignore(`status of 403 \(Forbidden\) https://[^ ]+/patients/` + stranger + `$`) // the stranger's chart before the glass is broken
	e.signIn(t, tb, doc, "#my-patients")
	tb.checkA11y()
	if got := tb.text("#my-patients"); !strings.Contains(got, "Daywalker") || !strings.Contains(got, "Cardiology ward") {
		t.Errorf("my patients: %q", got)
	}
	if got := tb.text("#current-encounters"); !strings.Contains(got, "Daywalker") || !strings.Contains(got, "inpatient encounter") {
		t.Errorf("current encounters: %q", got)
	}

	// The chart, from the worklist; a draft note, signed.
	tb.do(submit(`#my-patients a[href="/patients/`+mine+`"]`, "#notes"))
	// A document's image and PDF, from their same-origin URLs under the
	// CSP (a violation would fail the tab's clean check).
	tb.do(chromedp.WaitVisible(chromedp.CSS("img.doc-image")))
	deadline := time.Now().Add(10 * time.Second)
	for eval[int](tb, `document.querySelector("img.doc-image").naturalWidth`) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the document's image did not load")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := eval[int](tb, `document.querySelectorAll("iframe.doc-frame").length`); n != 1 {
		t.Errorf("%d PDF frames, want 1", n)
	}
	tb.do(fill("#note-title", "Ward round", "#note-text", "Stable overnight."), submit(`#add-note button[value="draft"]`, "#notes-list"))
	nid := strings.TrimPrefix(eval[string](tb, `document.querySelector("#notes-list li.note").id`), "note-")
	if got := tb.text("#note-" + nid); !strings.Contains(got, "Draft, not signed") {
		t.Fatalf("the draft shows %q", got)
	}
	tb.checkA11y()
	tb.do(submitJS("#note-"+nid+" .sign-note button", "#notes-list"))
	if got := tb.text("#note-" + nid); !strings.Contains(got, "Signed by Dana Day") {
		t.Fatalf("the signed note shows %q", got)
	}
	// An addendum, beneath the note.
	tb.do(chromedp.Click(chromedp.CSS("#note-"+nid+" details summary")), fill("#addendum-"+nid, "Potassium 3.2, repleted."),
		submitJS("#note-"+nid+" details button[type=submit]", "#notes-list"))
	if got := tb.text("#note-" + nid + " .addendum"); !strings.Contains(got, "Potassium 3.2, repleted.") || !strings.Contains(got, "Dana Day") {
		t.Errorf("the addendum shows %q", got)
	}
	if got := tb.text("#note-" + nid); !strings.Contains(got, "Stable overnight.") {
		t.Errorf("the signed note lost its text: %q", got)
	}
	tb.checkA11y()

	// Back to the start page: the chart is among the recent ones.
	tb.do(navigate(e.URL+"/patients"), waitCSS("#recent-patients"))
	if got := tb.text("#recent-patients"); !strings.Contains(got, "Daywalker") {
		t.Errorf("recently opened: %q", got)
	}

	// A patient outside their care, found by name; break the glass.
	tb.do(fill("#name", "Outlander"), submit("#patient-search button[type=submit]", "#elsewhere"))
	tb.checkA11y()
	if got := tb.text("#elsewhere"); !strings.Contains(got, "Outlander") || !strings.Contains(got, "1977-07-07") {
		t.Errorf("outside your care: %q", got)
	}
	if loc := tb.location(); strings.Contains(strings.ToLower(loc), "outlander") {
		t.Errorf("the search term is in the URL %q", loc)
	}
	tb.do(submit(`#elsewhere a.break-glass-link[href="/patients/`+stranger+`"]`, "#break-glass"))
	tb.do(fill("#bg-reason", "ETREAT", "#bg-detail", "Collapsed in the waiting room"),
		submit("#break-glass button[type=submit]", "#emergency-banner"))
	if got := tb.text("#patient-name"); !strings.Contains(got, "Outlander") {
		t.Errorf("the chart under emergency access shows %q", got)
	}
}

// submitJS is submit with the click made by the page's own script: the
// chart's images and PDF frame load while the test runs, and a layout
// shift under a loaded machine can move a button away from the
// coordinates a synthetic mouse click aims at.
func submitJS(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__oldDocument = true; document.querySelector(`+jsString(sel)+`).click(); true`)(ctx, tgt)
			return err
		}),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				ok, err := chromedp.Evaluate[bool](`!window.__oldDocument && document.readyState === "complete"`)(ctx, tgt)
				if err == nil && ok {
					return nil
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("no new document after clicking %s", sel)
		}),
		chromedp.WaitVisible(chromedp.CSS(want)),
	)
}

// TestFrontDeskPagesAccessible: the front desk's pages (start, search
// results, registration, a patient with the care-team form) under the
// CSP and without accessibility defects, reached from the start page.
func TestFrontDeskPagesAccessible(t *testing.T) {
	e := start(t, "sqlite")
	clerk := e.addUser(t, "desk.a11y", "Ada Desk", true, identity.RoleFrontDesk)
	e.addUser(t, "dr.a11y", "Al Doc", true, identity.RolePhysician)
	tb := newTab(t)
	e.signIn(t, tb, clerk, "#desk-link")
	tb.do(submit("#desk-link", "#desk-search"))
	tb.checkA11y()
	tb.do(submit("#register-link", "#register"))
	tb.checkA11y()
	tb.do(fill("#family", "Accessa", "#given", "Ivy", "#birthdate", "1999-09-09"), submit("#register button[type=submit]", "#assign"))
	tb.checkA11y()
	tb.do(fill("#clinician", eval[string](tb, `document.querySelector("#clinician option:nth-child(2)").value`)),
		submit("#assign button[type=submit]", "#assigned"))
	tb.checkA11y()
	tb.do(navigate(e.URL+"/desk"), waitCSS("#desk-search"), fill("#desk-name", "Accessa"), submit("#desk-search button[type=submit]", "#desk-results"))
	tb.checkA11y()
	if got := tb.text("#desk-results"); !strings.Contains(got, "Accessa, Ivy") {
		t.Errorf("desk search results: %q", got)
	}
}
