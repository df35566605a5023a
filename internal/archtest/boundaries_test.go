package archtest_test

import (
	"fmt"
	"strings"
	"testing"
)

// boundary is one import rule between the packages of the module: no
// package matching from may import (directly) a package matching one of
// forbidden ("/..." includes subpackages; "std-only" forbids everything
// outside the standard library).
type boundary struct {
	from      string
	forbidden []string
	why       string
}

// stdOnly in forbidden means: import nothing outside the standard library.
const stdOnly = "std-only"

// boundaries are the package boundaries of docs/architecture.md.
var boundaries = []boundary{
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
}

// matches reports whether path is pattern or, for "x/...", under x.
func matches(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

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
			if !matches(b.from, p.ImportPath) {
				continue
			}
			for _, imp := range p.Imports {
				for _, f := range b.forbidden {
					if (f == stdOnly && !isStd(imp)) || (f != stdOnly && matches(f, imp)) {
						out = append(out, fmt.Sprintf("%s imports %s: %s", strings.TrimPrefix(p.ImportPath, module+"/"), imp, b.why))
					}
				}
			}
		}
	}
	return out
}

func TestPackageBoundaries(t *testing.T) {
	pkgs := listPackages(t)
	for _, b := range boundaries {
		found := false
		for _, p := range pkgs {
			found = found || matches(b.from, p.ImportPath)
		}
		if !found {
			t.Errorf("boundary from %s names no package: the rule is blind", b.from)
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
