package archtest_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The boundary rules (boundaries_test.go) catch what they are for: the
// layers of ADR 0024 (the CLI, the domains that hold the administration
// use-cases) and the web kernel of ADR 0025.
func TestBoundaryRulesCatchViolations(t *testing.T) {
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
		{
			name: "account administration imports the SQL store",
			pkgs: []pkg{{ImportPath: module + "/internal/identity/account", Imports: []string{module + "/internal/storage/sqldb"}}},
			want: []string{"internal/identity/account imports " + module + "/internal/storage/sqldb"},
		},
		{
			name: "client administration imports the composition root",
			pkgs: []pkg{{ImportPath: module + "/internal/authn/smart", Imports: []string{module + "/internal/app"}}},
			want: []string{"internal/authn/smart imports " + module + "/internal/app"},
		},
		{
			name: "an authn package imports a front end",
			pkgs: []pkg{{ImportPath: module + "/internal/authn/sso", Imports: []string{module + "/internal/httpapi/signin"}}},
			want: []string{"internal/authn/sso imports " + module + "/internal/httpapi/signin"},
		},
		{
			name: "a domain test may open the SQL store",
			pkgs: []pkg{{ImportPath: module + "/internal/authn/smart/smarttest", XTestImports: []string{module + "/internal/storage/sqldb"}}},
		},
		{
			name: "webui imports httpapi",
			pkgs: []pkg{{ImportPath: module + "/internal/webui", Imports: []string{module + "/internal/httpapi"}}},
			want: []string{"internal/webui imports " + module + "/internal/httpapi"},
		},
		{
			name: "a webui test imports httpapi",
			pkgs: []pkg{{ImportPath: module + "/internal/webui", XTestImports: []string{module + "/internal/httpapi"}}},
			want: []string{"internal/webui imports " + module + "/internal/httpapi"},
		},
		{
			name: "a package below webui imports httpapi",
			pkgs: []pkg{{ImportPath: module + "/internal/webui/launch", TestImports: []string{module + "/internal/httpapi"}}},
			want: []string{"internal/webui/launch imports"},
		},
		{
			name: "webui and httpapi import the kernel",
			pkgs: []pkg{
				{ImportPath: module + "/internal/webui", Imports: []string{module + "/internal/web"}},
				{ImportPath: module + "/internal/httpapi", Imports: []string{module + "/internal/web", module + "/internal/webui"}},
			},
		},
		{
			name: "the kernel imports webui",
			pkgs: []pkg{{ImportPath: module + "/internal/web", Imports: []string{module + "/internal/webui"}}},
			want: []string{"internal/web imports " + module + "/internal/webui"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boundaryViolations(tt.pkgs, boundaries)
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

// errorTypeHome is the one package of the server (internal/...) that
// may declare an HTTP error type: an error whose struct carries an HTTP
// status (a field named Status, StatusCode or HTTPStatus, in any case).
// Everything else returns domain errors, which the HTTP layer maps to
// the kernel's one type (ADR 0025). bench/baseline, a stand-alone
// comparison server, is not phivault's HTTP layer and keeps its own.
const errorTypeHome = module + "/internal/web"

var statusField = regexp.MustCompile(`^(?i:status|statuscode|httpstatus)$`)

// httpErrorTypes returns the error types of p's non-test files that
// carry an HTTP status: struct types with a status field and an
// Error() string method.
func httpErrorTypes(p pkg) ([]string, error) {
	fset := token.NewFileSet()
	withStatus := map[string]bool{}
	isError := map[string]bool{}
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, fl := range st.Fields.List {
						for _, n := range fl.Names {
							if statusField.MatchString(n.Name) {
								withStatus[ts.Name.Name] = true
							}
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || len(d.Recv.List) != 1 || d.Type.Params.NumFields() != 0 ||
					d.Type.Results.NumFields() != 1 {
					continue
				}
				if res, ok := d.Type.Results.List[0].Type.(*ast.Ident); !ok || res.Name != "string" {
					continue
				}
				rt := d.Recv.List[0].Type
				if star, ok := rt.(*ast.StarExpr); ok {
					rt = star.X
				}
				if id, ok := rt.(*ast.Ident); ok {
					isError[id.Name] = true
				}
			}
		}
	}
	var out []string
	for name := range withStatus {
		if isError[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// errorTypeViolations applies the one-error-type rule to pkgs; types
// reports a package's HTTP error types.
func errorTypeViolations(pkgs []pkg, types func(pkg) ([]string, error)) []string {
	var bad []string
	for _, p := range pkgs {
		if p.ImportPath == errorTypeHome || !match(module+"/internal/...", p.ImportPath) {
			continue
		}
		names, err := types(p)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: reading its error types: %v", p.ImportPath, err))
		}
		for _, n := range names {
			bad = append(bad, fmt.Sprintf("%s declares the HTTP error type %s: return a domain error, or a *web.Error from the HTTP layer (ADR 0025)", p.ImportPath, n))
		}
	}
	return bad
}

func TestOnlyTheKernelDeclaresAnHTTPErrorType(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range errorTypeViolations(pkgs, httpErrorTypes) {
		t.Error(v)
	}
	// The check must see the kernel's own type, or it is blind.
	for _, p := range pkgs {
		if p.ImportPath == errorTypeHome {
			if names, err := httpErrorTypes(p); err != nil || !slices.Contains(names, "Error") {
				t.Errorf("%s: found %q (%v), want its Error type: the check is blind", p.ImportPath, names, err)
			}
		}
	}
}

func TestErrorTypeRuleCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", `package x

type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

type response struct{ Status int } // not an error
`)
	write("b.go", `package x

type apiError struct{ StatusCode int }

func (e apiError) Error() string { return "" }
`)
	p := pkg{ImportPath: module + "/internal/record", Dir: dir, GoFiles: []string{"a.go", "b.go"}}
	got, err := httpErrorTypes(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"apiError", "pageError"}) {
		t.Errorf("httpErrorTypes = %q, want apiError and pageError", got)
	}
	if v := errorTypeViolations([]pkg{p}, httpErrorTypes); len(v) != 2 || !strings.Contains(v[0], "internal/record declares the HTTP error type apiError") {
		t.Errorf("violations: %q", v)
	}
	p.ImportPath = errorTypeHome
	if v := errorTypeViolations([]pkg{p}, httpErrorTypes); len(v) != 0 {
		t.Errorf("the kernel's own types were refused: %q", v)
	}
}
