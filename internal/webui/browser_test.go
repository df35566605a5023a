package webui_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// One headless Chromium per test binary, started by the first test
// that needs it and stopped by TestMain; each test gets its own
// browser context (its own cookies) in a new tab.

// chromiumPath is where the machine's Chromium lives; PHIVAULT_CHROMIUM
// overrides it.
func chromiumPath() string {
	if p := os.Getenv("PHIVAULT_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

var shared struct {
	once    sync.Once
	ctx     context.Context
	err     error
	cancels []context.CancelFunc
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(shared.cancels) - 1; i >= 0; i-- {
		shared.cancels[i]()
	}
	os.Exit(code)
}

// browser returns the shared browser, or skips the test with the
// needs-chromium prefix (CI fails on it: the skip is meant to be seen).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("needs-chromium: no Chromium at %s (set PHIVAULT_CHROMIUM): %v", path, err)
	}
	shared.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // root in a container; the test pages are our own
			chromedp.IgnoreCertErrors,
			chromedp.WindowSize(1280, 900),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-dev-shm-usage", true),
		)
		actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
		shared.cancels = append(shared.cancels, cancel)
		bctx, bcancel := chromedp.NewContext(actx)
		shared.cancels = append(shared.cancels, bcancel)
		if err := chromedp.Do(bctx); err != nil {
			shared.err = err
			return
		}
		shared.ctx = bctx
	})
	if shared.err != nil {
		t.Fatalf("starting Chromium at %s: %v", path, shared.err)
	}
	return shared.ctx
}

// tab is one isolated browser context with everything the page reported:
// console errors, uncaught exceptions, browser log errors (CSP refusals
// among them), securitypolicyviolation events and dialogs.
type tab struct {
	ctx context.Context
	t   *testing.T

	mu         sync.Mutex
	errors     []string
	dialogs    []string
	allowErrs  bool
	ignored    []*regexp.Regexp
	dialogOpen chan string
}

// cspProbe records securitypolicyviolation events in the page; it is
// injected by DevTools (not subject to the page's CSP) before any page
// script runs.
const cspProbe = `window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});`

func newTab(t *testing.T) *tab {
	t.Helper()
	bctx := browser(t)
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	tb := &tab{ctx: ctx, t: t, dialogOpen: make(chan string, 8)}
	if err := chromedp.Do(ctx); err != nil {
		cancelT()
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	if err := chromedp.Listen(ctx, tb.event); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, call(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !tb.allowErrs && !t.Failed() {
			tb.assertClean()
		}
		cancelT()
		cancel()
	})
	return tb
}

// call runs one protocol command as an action.
func call[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[R] {
	return func(ctx context.Context, tgt *chromedp.Target) (R, error) {
		return chromedp.Call(ctx, cmd, params)
	}
}

// event runs on the tab's reader goroutine: record and return fast.
func (tb *tab) event(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			tb.errors = append(tb.errors, "console."+string(e.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		tb.errors = append(tb.errors, "exception: "+msg)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
			tb.errors = append(tb.errors, fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL))
		}
	case *page.EventJavascriptDialogOpening:
		tb.dialogs = append(tb.dialogs, string(e.Type)+": "+e.Message)
		select {
		case tb.dialogOpen <- e.Message:
		default:
		}
	}
}

// ignore drops reported errors matching re (expected refusals).
func (tb *tab) ignore(re string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.ignored = append(tb.ignored, regexp.MustCompile(re))
}

// assertClean fails the test on any console error, exception, log error,
// CSP violation or dialog seen by this tab.
func (tb *tab) assertClean() {
	tb.t.Helper()
	tb.mu.Lock()
	errs, dialogs := append([]string(nil), tb.errors...), append([]string(nil), tb.dialogs...)
	tb.mu.Unlock()
outer:
	for _, e := range errs {
		for _, re := range tb.ignored {
			if re.MatchString(e) {
				continue outer
			}
		}
		tb.t.Errorf("browser reported: %s", e)
	}
	for _, d := range dialogs {
		tb.t.Errorf("a dialog opened: %s", d)
	}
	if v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`window.__csp || []`)); err == nil {
		for _, x := range v {
			tb.t.Errorf("CSP violation: %s", x)
		}
	}
}

// dismissDialogs closes any dialog so a test that expects none does not
// hang; the dialog is still reported by assertClean.
func (tb *tab) dismissDialogs() {
	go func() {
		for {
			select {
			case <-tb.ctx.Done():
				return
			case <-tb.dialogOpen:
				_, _ = chromedp.Run(tb.ctx, call(page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}))
			}
		}
	}()
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// text returns the text content of the first element matching css.
func (tb *tab) text(css string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.TextContent(chromedp.CSS(css)))
	if err != nil {
		tb.t.Fatalf("reading %s: %v (at %s)", css, err, tb.location())
	}
	return s
}

func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// fill sets each field (CSS selector → value), waiting for it first.
func fill(fields ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(fields); i += 2 {
		sel, v := fields[i], fields[i+1]
		steps = append(steps, chromedp.WaitReady(chromedp.CSS(sel)), chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			js := `(function(){var e=document.querySelector(` + jsString(sel) + `); e.value=` + jsString(v) + `; e.dispatchEvent(new Event("input",{bubbles:true})); return e.value;})()`
			got, err := chromedp.Evaluate[string](js)(ctx, tgt)
			if err != nil {
				return err
			}
			if got != v {
				return fmt.Errorf("field %s holds %q after setting %q", sel, got, v)
			}
			return nil
		}))
	}
	return chromedp.Steps(steps...)
}

// submit clicks sel, waits until a new document has loaded (a marker
// set on the old one is gone), then waits for want on it.
func submit(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__oldDocument = true`)(ctx, tgt)
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			// Evaluate fails while the target navigates: retry until the
			// new document answers.
			deadline := time.Now().Add(20 * time.Second)
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

func navigate(u string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(u) }

func waitCSS(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// tlsInsecure trusts the test server's certificate without checking it:
// these clients only read headers and status codes of a local server.
func tlsInsecure() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// a11yProbe lists accessibility defects of the current page that a
// machine can see: controls without a label, images without alt, not
// exactly one h1, missing landmarks or language, no visible focus.
const a11yProbe = `(function () {
  var bad = [];
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (e) {
    if (!e.labels || e.labels.length === 0) { bad.push("unlabelled " + e.tagName + "#" + e.id); }
  });
  document.querySelectorAll("img").forEach(function (e) { if (!e.hasAttribute("alt")) { bad.push("img without alt"); } });
  if (document.querySelectorAll("h1").length !== 1) { bad.push(document.querySelectorAll("h1").length + " h1"); }
  if (!document.querySelector("main") || !document.querySelector("header")) { bad.push("missing landmarks"); }
  if (!document.documentElement.lang) { bad.push("no lang"); }
  var f = document.querySelector("main input:not([type=hidden]), main button");
  if (f) {
    f.focus();
    var s = getComputedStyle(f);
    if (s.outlineStyle === "none" || parseFloat(s.outlineWidth) < 2) { bad.push("no visible focus on " + f.tagName); }
    f.blur();
  }
  return bad;
})()`

// checkA11y fails the test with the page's accessibility defects.
func (tb *tab) checkA11y() {
	tb.t.Helper()
	for _, b := range eval[[]string](tb, a11yProbe) {
		tb.t.Errorf("accessibility, at %s: %s", tb.location(), b)
	}
}
