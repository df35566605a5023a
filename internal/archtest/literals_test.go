package archtest_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Owners and references are built and parsed by internal/ident
// (PatientRef, PatientOwner, PatientPrefix, ...), not by string literals
// repeated across the tree: these literals may appear only in ident and
// in the conformance suite's test data (storagetest).
var identLiterals = map[string]bool{"Patient/": true, "Joint/": true, "system/": true}

var identLiteralsAllowed = map[string]bool{
	module + "/internal/ident":               true,
	module + "/internal/storage/storagetest": true,
}

// identLiteralUses returns "file:line" of every string literal in p's
// non-test files that is one of identLiterals.
func identLiteralUses(p pkg) ([]string, error) {
	var uses []string
	fset := token.NewFileSet()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && identLiterals[s] {
					uses = append(uses, fmt.Sprintf("%s %q", fset.Position(lit.Pos()), s))
				}
			}
			return true
		})
	}
	return uses, nil
}

func TestIdentifiersNotSpelledAsLiterals(t *testing.T) {
	for _, p := range listPackages(t) {
		if identLiteralsAllowed[p.ImportPath] || !strings.HasPrefix(p.ImportPath, module+"/internal/") {
			continue
		}
		uses, err := identLiteralUses(p)
		if err != nil {
			t.Errorf("%s: %v", p.ImportPath, err)
		}
		for _, u := range uses {
			t.Errorf("%s: %s: build it with internal/ident", p.ImportPath, u)
		}
	}
}

// The literal checker must see a literal.
func TestIdentLiteralCheckerSeesLiterals(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath == module+"/internal/ident" {
			if uses, err := identLiteralUses(p); err != nil || len(uses) == 0 {
				t.Fatalf("no literal found in ident (%v): the check is blind", err)
			}
			return
		}
	}
	t.Fatal("package ident not found")
}
