package archtest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Rule (d): layers. The CLI is a thin front end over the composition
// root: it reaches the database only through the services app exposes,
// never the SQL store itself (ADR 0024), so no command can bypass the
// rules of the domains' audited changes, which run on the store's unit
// of work. Drivers (sqlite, postgres) are app's to open.
var forbiddenImports = []struct {
	from []string // importers, patterns as in domain
	to   []string // forbidden direct imports, patterns as in domain
	why  string
}{
	{
		from: []string{module + "/internal/cli/..."},
		to:   []string{module + "/internal/storage/sqldb", module + "/internal/storage/sqlite", module + "/internal/storage/postgres"},
		why:  "the CLI reaches the database through app's services, not the SQL store (ADR 0024)",
	},
}

// layerViolations applies rule (d) to pkgs (non-test imports).
func layerViolations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		for _, r := range forbiddenImports {
			if !matchAny(r.from, p.ImportPath) {
				continue
			}
			for _, imp := range p.Imports {
				if matchAny(r.to, imp) {
					bad = append(bad, fmt.Sprintf("%s imports %s: %s", p.ImportPath, imp, r.why))
				}
			}
		}
	}
	return bad
}

func TestLayers(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range layerViolations(pkgs) {
		t.Error(v)
	}
	// The rule must name packages that exist.
	for _, r := range forbiddenImports {
		for _, pat := range append(slices.Clone(r.from), r.to...) {
			base, _ := strings.CutSuffix(pat, "/...")
			if !slices.ContainsFunc(pkgs, func(p pkg) bool { return match(pat, p.ImportPath) || p.ImportPath == base }) {
				t.Errorf("rule names %s, which no longer exists: update it", pat)
			}
		}
	}
}

func TestLayerCheckerCatchesViolations(t *testing.T) {
	tests := []struct {
		name string
		pkgs []pkg
		want []string
	}{
		{
			name: "cli imports the SQL store",
			pkgs: []pkg{{ImportPath: module + "/internal/cli", Imports: []string{module + "/internal/app", module + "/internal/storage/sqldb"}}},
			want: []string{"internal/cli imports " + module + "/internal/storage/sqldb"},
		},
		{
			name: "a cli subpackage imports a driver",
			pkgs: []pkg{{ImportPath: module + "/internal/cli/demo", Imports: []string{module + "/internal/storage/sqlite"}}},
			want: []string{"internal/cli/demo imports " + module + "/internal/storage/sqlite"},
		},
		{
			name: "cli through app is fine",
			pkgs: []pkg{{ImportPath: module + "/internal/cli", Imports: []string{module + "/internal/app", module + "/internal/storage"}}},
		},
		{
			name: "app may import the SQL store",
			pkgs: []pkg{{ImportPath: module + "/internal/app", Imports: []string{module + "/internal/storage/sqldb"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := layerViolations(tt.pkgs)
			if len(got) != len(tt.want) {
				t.Fatalf("violations: got %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d: got %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
