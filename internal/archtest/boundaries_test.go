package archtest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// boundary is one import rule between the packages of the module: no
// package matching from may import (directly) a package matching one of
// forbidden ("/..." includes subpackages; "std-only" forbids everything
// outside the standard library). With tests, the package's test files
// are held to it too.
type boundary struct {
	from      string
	forbidden []string
	why       string
	tests     bool
}

// stdOnly in forbidden means: import nothing outside the standard library.
const stdOnly = "std-only"

// boundaries are the package boundaries of docs/architecture.md.
var boundaries = []boundary{
	// Layers (ADR 0024): the CLI is a thin front end over the composition
	// root; it reaches the database only through the services app
	// exposes, so no command can bypass the domains' audited changes.
	{
		from:      module + "/internal/cli/...",
		forbidden: []string{module + "/internal/storage/sqldb", module + "/internal/storage/sqlite", module + "/internal/storage/postgres"},
		why:       "the CLI reaches the database through app's services, not the SQL store (ADR 0024)",
	},
	// The domains (ADR 0024, docs/architecture.md): the use-cases live
	// here, over the small interfaces they declare; the composition root
	// hands them the SQL store's implementations. None reaches the SQL
	// store, the composition root or a front end.
	domainRule("/internal/audit/..."),
	domainRule("/internal/authn/..."),
	domainRule("/internal/authz/..."),
	domainRule("/internal/identity/..."),
	domainRule("/internal/keys/..."),
	domainRule("/internal/privacy/..."),
	domainRule("/internal/ledger/..."),
	domainRule("/internal/record/..."),
	domainRule("/internal/fhir/..."),
	domainRule("/internal/subscription/..."),
	// The web kernel (ADR 0025), test files included.
	{
		from:      module + "/internal/webui/...",
		forbidden: []string{module + "/internal/httpapi/..."},
		why:       "the web UI shares HTTP plumbing with the FHIR API through the kernel (internal/web), never by importing the API (ADR 0025)",
		tests:     true,
	},
	{
		from:      module + "/internal/web/...",
		forbidden: []string{module + "/internal/httpapi/...", module + "/internal/webui/..."},
		why:       "the kernel sits below both front ends (ADR 0025)",
		tests:     true,
	},
	{
		from:      module + "/internal/ident",
		forbidden: []string{stdOnly},
		why:       "identifiers are a leaf every package may use",
	},
	{
		from:      module + "/internal/config",
		forbidden: []string{stdOnly},
		why:       "config is a leaf: it reads settings and checks their shape; what only a domain can judge is app.CheckConfig",
	},
	{
		from: module + "/internal/httpapi/signin",
		forbidden: []string{module + "/internal/record", module + "/internal/keys", module + "/internal/authz",
			module + "/internal/httpapi", module + "/internal/httpapi/auditapi"},
		why: "the sign-in API holds only sign-in's dependencies: never the record, the keys or the authorizer; httpapi mounts it, not the other way round",
	},
	{
		from: module + "/internal/httpapi/auditapi",
		forbidden: []string{module + "/internal/record", module + "/internal/keys", module + "/internal/authz",
			module + "/internal/httpapi", module + "/internal/httpapi/signin"},
		why: "the audit log's read API holds only the log's readers and recorder: never the record, the keys or the authorizer; httpapi mounts it",
	},

	// The web UI by audience (docs/webui.md): each audience package
	// gets only the services it uses and none imports another; what
	// they share (site, chartview) imports none of them.
	{
		from:      webui + "/site",
		forbidden: []string{webui, webui + "/signin", webui + "/chart", webui + "/portal", webui + "/console", webui + "/desk", webui + "/chartview", module + "/internal/keys", module + "/internal/storage"},
		why:       "the shared web UI kernel knows no audience and no keys",
	},
	{
		from:      webui + "/chartview",
		forbidden: []string{webui, webui + "/signin", webui + "/chart", webui + "/portal", webui + "/console", webui + "/desk", module + "/internal/keys"},
		why:       "the chart's view model is shared by the chart and the portal, and reaches no keys",
	},
	{
		from:      webui + "/export",
		forbidden: []string{webui, webui + "/site", webui + "/signin", webui + "/chart", webui + "/portal", webui + "/console", webui + "/chartview", module + "/internal/keys", module + "/internal/record", module + "/internal/storage", module + "/internal/audit"},
		why:       "the file writers (CSV, PDF) are shared by the portal and the console; they read and record nothing, and know no audience",
	},
	{
		from:      webui + "/signin",
		forbidden: []string{webui, webui + "/chart", webui + "/portal", webui + "/console", webui + "/desk", webui + "/chartview", module + "/internal/keys", module + "/internal/record", module + "/internal/storage"},
		why:       "sign-in gets the login service only, no record, no keys",
	},
	{
		from:      webui + "/chart",
		forbidden: []string{webui, webui + "/signin", webui + "/portal", webui + "/console", webui + "/desk", module + "/internal/keys"},
		why:       "the staff chart gets the record service and the authorizer, no keys, no other audience",
	},
	{
		from:      webui + "/portal",
		forbidden: []string{webui, webui + "/signin", webui + "/chart", webui + "/console", webui + "/desk", module + "/internal/keys"},
		why:       "the patient portal never reaches keys nor another audience's pages",
	},
	{
		from:      webui + "/console",
		forbidden: []string{webui, webui + "/signin", webui + "/chart", webui + "/portal", webui + "/desk", webui + "/chartview", module + "/internal/record"},
		why:       "the console administers; it never reads a patient's record nor another audience's pages",
	},
	{
		from:      webui + "/desk",
		forbidden: []string{webui, webui + "/signin", webui + "/chart", webui + "/portal", webui + "/console", module + "/internal/keys", module + "/internal/authz", module + "/internal/storage"},
		why:       "the front desk gets the record service and the directory: no keys, no authorizer, no other audience",
	},
}

// domainRule is the rule of a domain package (or tree): no SQL store, no
// composition root, no front end.
func domainRule(path string) boundary {
	return boundary{
		from: module + path,
		forbidden: []string{module + "/internal/storage/sqldb", module + "/internal/storage/sqlite", module + "/internal/storage/postgres",
			module + "/internal/app", module + "/internal/cli", module + "/internal/httpapi/...", module + "/internal/webui/..."},
		why: "a domain declares the interfaces it needs and is handed their implementations by app; it never reaches the SQL store, app or a front end (ADR 0024)",
	}
}

// webui is the web UI's import path, for the audience rules.
const webui = module + "/internal/webui"

// isStd reports whether an import path is in the standard library (its
// first element has no dot).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func boundaryViolations(pkgs []pkg, rules []boundary) []string {
	var out []string
	for _, p := range pkgs {
		for _, b := range rules {
			if !match(b.from, p.ImportPath) {
				continue
			}
			imports := p.Imports
			if b.tests {
				imports = append(append(slices.Clone(imports), p.TestImports...), p.XTestImports...)
			}
			for _, imp := range imports {
				for _, f := range b.forbidden {
					if (f == stdOnly && !isStd(imp)) || (f != stdOnly && match(f, imp)) {
						out = append(out, fmt.Sprintf("%s imports %s: %s", strings.TrimPrefix(p.ImportPath, module+"/"), imp, b.why))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestPackageBoundaries(t *testing.T) {
	pkgs := listPackages(t)
	for _, b := range boundaries {
		found := false
		for _, p := range pkgs {
			found = found || match(b.from, p.ImportPath)
		}
		if !found {
			t.Errorf("boundary from %s names no package: the rule is blind", b.from)
		}
		for _, f := range b.forbidden {
			base, _ := strings.CutSuffix(f, "/...")
			if f != stdOnly && !slices.ContainsFunc(pkgs, func(p pkg) bool { return match(f, p.ImportPath) || p.ImportPath == base }) {
				t.Errorf("boundary from %s forbids %s, which no longer exists: update it", b.from, f)
			}
		}
	}
	for _, v := range boundaryViolations(pkgs, boundaries) {
		t.Error(v)
	}
}

// The boundary checker must catch what it is for.
func TestBoundaryCheckerCatchesViolations(t *testing.T) {
	rules := []boundary{
		{from: module + "/internal/ident", forbidden: []string{stdOnly}, why: "leaf"},
		{from: module + "/internal/webui/...", forbidden: []string{module + "/internal/httpapi/..."}, why: "audiences"},
	}
	pkgs := []pkg{
		{ImportPath: module + "/internal/ident", Imports: []string{"strings", "golang.org/x/text/cases"}},
		{ImportPath: module + "/internal/webui/portal", Imports: []string{"net/http", module + "/internal/httpapi/smart"}},
		{ImportPath: module + "/internal/webuix", Imports: []string{module + "/internal/httpapi"}},
	}
	got := boundaryViolations(pkgs, rules)
	want := []string{"internal/ident imports golang.org/x/text/cases", "internal/webui/portal imports " + module + "/internal/httpapi/smart"}
	if len(got) != len(want) {
		t.Fatalf("violations %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("violation %q, want one containing %q", got[i], want[i])
		}
	}
}

// The web UI's audience rules catch a portal reaching keys or the
// console, and a chart reaching the portal.
func TestWebUIAudienceRulesBite(t *testing.T) {
	pkgs := []pkg{
		{ImportPath: webui + "/portal", Imports: []string{"net/http", module + "/internal/keys", webui + "/console", webui + "/site"}},
		{ImportPath: webui + "/chart", Imports: []string{webui + "/portal", webui + "/chartview"}},
	}
	got := boundaryViolations(pkgs, boundaries)
	want := []string{"internal/webui/chart imports " + webui + "/portal", // sorted
		"internal/webui/portal imports " + module + "/internal/keys", "internal/webui/portal imports " + webui + "/console"}
	if len(got) != len(want) {
		t.Fatalf("violations %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+":") {
			t.Errorf("violation %q, want %q", got[i], want[i])
		}
	}
}

// The key lifecycle's rule catches it reaching the SQL store or app,
// and lets it use the storage interfaces.
func TestKeyLifecycleRuleBites(t *testing.T) {
	lc := module + "/internal/keys/lifecycle"
	pkgs := []pkg{{ImportPath: lc, Imports: []string{module + "/internal/storage", module + "/internal/storage/sqldb", module + "/internal/app"}}}
	got := boundaryViolations(pkgs, boundaries)
	want := []string{"internal/keys/lifecycle imports " + module + "/internal/app", // sorted
		"internal/keys/lifecycle imports " + module + "/internal/storage/sqldb"}
	if len(got) != len(want) {
		t.Fatalf("violations %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+":") {
			t.Errorf("violation %q, want %q", got[i], want[i])
		}
	}
}
