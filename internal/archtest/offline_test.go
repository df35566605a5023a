package archtest_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// Rule (c): a record.Caller without a guard is refused everything, and
// the one guard that allows everything, record.Offline, is for trusted
// offline commands (an operator holding the key file): only these
// packages may name it in non-test code. A package that serves requests
// (httpapi, webui) naming it would hand a request unchecked access.
//
// The same holds for record.NewAuthzSource, the authorizer's privileged
// read path (reads without a decision), which the composition root makes
// for the authorizer, and record.NewOperator, the offline guard bound to
// an operator, which it hands the CLI's offline commands, and
// record.NewSubscriptions, the subscription service's reads of
// Subscription resources without a decision and its status writes.
var offlineAllowed = map[string]string{
	module + "/internal/app": "the composition root: the authorizer's source, and the operator of the offline commands (import, demo seeding, reindex)",
}

const recordPkg = module + "/internal/record"

// privileged are the record identifiers only offlineAllowed may name.
var privileged = map[string]bool{"Offline": true, "NewAuthzSource": true, "NewOperator": true, "NewSubscriptions": true}

// offlineUses returns "file:line" of every selection of record.Offline
// or record.NewAuthzSource in p's non-test files.
func offlineUses(p pkg) ([]string, error) {
	var uses []string
	fset := token.NewFileSet()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		local := ""
		for _, is := range file.Imports {
			if path, _ := strconv.Unquote(is.Path.Value); path == recordPkg {
				local = "record"
				if is.Name != nil {
					local = is.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		if local == "." {
			uses = append(uses, fset.Position(file.Package).String()+": dot import of record")
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && privileged[sel.Sel.Name] {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
					uses = append(uses, sel.Sel.Name+" at "+fset.Position(sel.Pos()).String())
				}
			}
			return true
		})
	}
	return uses, nil
}

func offlineViolations(pkgs []pkg, uses func(pkg) ([]string, error)) []string {
	var bad []string
	for _, p := range pkgs {
		if p.ImportPath == recordPkg || !slices.Contains(p.Imports, recordPkg) {
			continue
		}
		if _, ok := offlineAllowed[p.ImportPath]; ok {
			continue
		}
		us, err := uses(p)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: checking its use of record.Offline: %v", p.ImportPath, err))
		}
		for _, u := range us {
			bad = append(bad, fmt.Sprintf("%s names a privileged record value (%s): only offline commands and the composition root may (%v)", p.ImportPath, u, slices.Sorted(maps.Keys(offlineAllowed))))
		}
	}
	return bad
}

func TestOfflineGuardOnlyInOfflineCommands(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range offlineViolations(pkgs, offlineUses) {
		t.Error(v)
	}
	// The check must see real uses: the composition root names them.
	for _, p := range pkgs {
		if p.ImportPath == module+"/internal/app" {
			if us, err := offlineUses(p); err != nil || len(us) == 0 {
				t.Errorf("no use of record.NewOperator or NewAuthzSource found in app (%v): the check is blind", err)
			}
		}
	}
}

func TestOfflineCheckerCatchesViolations(t *testing.T) {
	fake := func(uses ...string) func(pkg) ([]string, error) {
		return func(pkg) ([]string, error) { return uses, nil }
	}
	bad := offlineViolations([]pkg{{ImportPath: module + "/internal/httpapi", Imports: []string{recordPkg}}}, fake("launch.go:1"))
	if len(bad) != 1 {
		t.Errorf("httpapi naming record.Offline: %v, want one violation", bad)
	}
	if bad := offlineViolations([]pkg{{ImportPath: module + "/internal/cli", Imports: []string{recordPkg}}}, fake("import.go:1")); len(bad) != 1 {
		t.Errorf("the CLI naming record.Offline: %v, want one violation (it asks app for an operator)", bad)
	}
	if bad := offlineViolations([]pkg{{ImportPath: module + "/internal/app", Imports: []string{recordPkg}}}, fake("reads.go:1")); len(bad) != 0 {
		t.Errorf("the composition root naming record.NewOperator: %v, want none", bad)
	}
	if bad := offlineViolations([]pkg{{ImportPath: module + "/internal/webui", Imports: []string{"fmt"}}}, fake("x.go:1")); len(bad) != 0 {
		t.Errorf("a package not importing record: %v", bad)
	}
}
