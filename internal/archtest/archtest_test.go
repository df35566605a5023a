// Package archtest_test turns the architecture rules of STYLE.md (rule 4)
// into tests over the import graph, as reported by "go list" (test files
// are not part of it unless a rule says so) and over the syntax of
// non-test files:
//
//   - domain packages link no SQL driver and import no net/http;
//   - only a short, named allow-list imports crypto primitives;
//   - package boundaries, one table (boundaries_test.go): leaves (ident,
//     config), the CLI never imports the SQL store or its drivers, the
//     key lifecycle neither (nor app or a front end), the web kernel and
//     the front ends, the web UI's audiences;
//   - only the web kernel declares an HTTP error type (web_test.go);
//   - record.Offline and record.NewAuthzSource only in the CLI and the
//     composition root (offline_test.go);
//   - owner and reference literals only in ident (literals_test.go).
//
// A violation fails with the package and import at fault. The rules are
// written as data below; changing them is a design decision and belongs
// in review, with its one-line reason.
package archtest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/phivault/phivault"

// pkg is the part of "go list -json" output the rules read.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string // direct, non-test
	// TestImports and XTestImports are the direct imports of the
	// package's in-package and external test files.
	TestImports  []string
	XTestImports []string
	Deps         []string // transitive, non-test
	Error        *struct{ Err string }
}

// domain lists the domain packages; a trailing "/..." includes subpackages.
var domain = []string{
	module + "/internal/record",
	module + "/internal/audit",
	module + "/internal/fhir/...",
	module + "/internal/keys",
	module + "/internal/keys/lifecycle",
	module + "/internal/authn",
	module + "/internal/authn/session",
	module + "/internal/identity",
	module + "/internal/storage", // the interface package only: drivers live below it
}

// sqlDrivers may not be linked into a domain package, even indirectly.
var sqlDrivers = []string{"modernc.org/sqlite", "github.com/jackc/pgx"}

// httpAllowed are domain packages that may import net/http, with why.
var httpAllowed = map[string]string{
	module + "/internal/keys": "the KMS KEK is reached through an injected *http.Client",
}

// httpConstantsOnly are domain packages that may import net/http for its
// constants alone (Status*, Method*, StatusText), with why. Any other
// use of the package there (a Client, Handler, Request...) fails.
// None today: record, the last one, spells the FHIR RESTful statuses and
// methods its Bundle entries carry itself (record/status.go, ADR 0025).
var httpConstantsOnly = map[string]string{}

// primitives are imports that implement cryptographic primitives. Not
// included: crypto/rand (randomness), crypto/subtle (constant-time
// comparison), crypto/tls and crypto/x509 (protocols over primitives).
var primitives = []string{
	"crypto/aes", "crypto/cipher", "crypto/des", "crypto/dsa", "crypto/ecdh",
	"crypto/ecdsa", "crypto/ed25519", "crypto/elliptic", "crypto/hkdf",
	"crypto/hmac", "crypto/md5", "crypto/mlkem", "crypto/pbkdf2", "crypto/rc4",
	"crypto/rsa", "crypto/sha1", "crypto/sha256", "crypto/sha3", "crypto/sha512",
	"golang.org/x/crypto/...", "github.com/tink-crypto/...", "filippo.io/...",
	"golang.org/x/mod/sumdb/note", "github.com/go-jose/...", "github.com/transparency-dev/formats/note",
}

// cryptoAllowed says which package may import which primitives, and why.
var cryptoAllowed = map[string]struct {
	imports []string // patterns as in primitives
	why     string
}{
	module + "/internal/keys":         {[]string{"..."}, "all encryption and signing lives here (rule 21)"},
	module + "/internal/tlsca":        {[]string{"crypto/ecdsa", "crypto/elliptic", "crypto/sha256"}, "local CA certificates and their SHA-256 fingerprint"},
	module + "/internal/authn":        {[]string{"crypto/sha256"}, "stored form of 256-bit API tokens"},
	module + "/internal/audit/merkle": {[]string{"golang.org/x/mod/sumdb/note", "github.com/transparency-dev/formats/note"}, "signs (through keys.LogSigner) and verifies C2SP checkpoints, and co-signs them as an outside witness (C2SP tlog-cosignature, a key held by the monitor's machine, not phivault's): the Merkle item of rule 4's allow-list"},
	module + "/internal/authz":        {[]string{"crypto/sha256"}, "content hash (version) of the authorization policy set: an identifier, not a secret"},
	module + "/internal/backup":       {[]string{"filippo.io/...", "crypto/sha256"}, "backups and key escrows encrypted with age (filippo.io/age, DESIGN §5), SHA-256 of archive files and ciphertext (integrity, not secrets)"},
	module + "/bench/bulkexport":      {[]string{"crypto/ecdsa", "crypto/elliptic", "github.com/go-jose/..."}, "a benchmark client of Bulk Data export: its own SMART Backend Services key pair and private_key_jwt assertion, as an outside client has (not part of the server)"},
	module + "/internal/reimport":     {[]string{"crypto/sha256"}, "import match keys: the hash of an entry's fullUrl or id and content as the file has it, an identifier for re-import, not a secret (ADR 0037)"},

	// Issue 3 (identity).
	module + "/internal/authn/session":             {[]string{"crypto/sha256"}, "stored form of 256-bit session tokens and the CSRF token bound to them"},
	module + "/internal/authn/recovery":            {[]string{"crypto/sha256"}, "stored form of 80-bit recovery codes"},
	module + "/internal/authn/password":            {[]string{"golang.org/x/crypto/argon2"}, "password hashing (argon2id), the named allow-list of rule 4"},
	module + "/internal/keys/keystest":             {[]string{"github.com/tink-crypto/..."}, "an attacker's scanner for the crypto-shredding tests: unwraps key bytes found in raw database files with a stolen key file (ADR 0015); linked by tests only"},
	module + "/internal/authn/passkey/passkeytest": {[]string{"crypto/ecdsa", "crypto/elliptic", "crypto/sha256"}, "a software WebAuthn authenticator for tests (signs assertions, never verifies); linked by tests only"},
	module + "/internal/authn/smart":               {[]string{"crypto/sha256", "crypto/rsa", "crypto/ecdsa", "github.com/go-jose/..."}, "stored form of SMART access tokens; size and curve checks of client JWKs; JWT assertions verified by go-jose (RS384/ES384 only)"},
}

// match reports whether path matches pattern ("x/..." matches x and below;
// "..." matches everything).
func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// listPackages runs "go list -json" over the whole module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not available:", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-e", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages: the pattern is wrong", len(pkgs))
	}
	return pkgs
}

// domainViolations applies rule (a) to pkgs. constantsOnly is the
// httpConstantsOnly table; httpConstants reports the net/http
// identifiers a package uses (only asked for those in constantsOnly).
func domainViolations(pkgs []pkg, constantsOnly map[string]string, httpConstants func(pkg) ([]string, error)) []string {
	var bad []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if !matchAny(domain, p.ImportPath) {
			continue
		}
		seen[p.ImportPath] = true
		for _, d := range p.Deps {
			if matchAny(sqlDrivers, d) || slices.ContainsFunc(sqlDrivers, func(s string) bool { return strings.HasPrefix(d, s) }) {
				bad = append(bad, fmt.Sprintf("domain package %s links the SQL driver %s", p.ImportPath, d))
			}
		}
		if !slices.Contains(p.Imports, "net/http") {
			continue
		}
		if _, ok := httpAllowed[p.ImportPath]; ok {
			continue
		}
		if _, ok := constantsOnly[p.ImportPath]; ok {
			uses, err := httpConstants(p)
			if err != nil {
				bad = append(bad, fmt.Sprintf("domain package %s: checking its net/http use: %v", p.ImportPath, err))
			}
			for _, u := range uses {
				if !httpConstant.MatchString(u) {
					bad = append(bad, fmt.Sprintf("domain package %s uses net/http.%s; it may use only status and method constants", p.ImportPath, u))
				}
			}
			continue
		}
		bad = append(bad, fmt.Sprintf("domain package %s imports net/http", p.ImportPath))
	}
	for _, d := range domain {
		if !strings.HasSuffix(d, "/...") && !seen[d] {
			bad = append(bad, fmt.Sprintf("domain package %s no longer exists: update the rule", d))
		}
	}
	return bad
}

var httpConstant = regexp.MustCompile(`^(Status[A-Za-z]+|Method[A-Za-z]+|StatusText)$`)

// cryptoViolations applies rule (b) to pkgs.
func cryptoViolations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if !matchAny(primitives, imp) {
				continue
			}
			allow, ok := cryptoAllowed[p.ImportPath]
			if ok && matchAny(allow.imports, imp) {
				continue
			}
			bad = append(bad, fmt.Sprintf("%s imports the crypto primitive %s; only internal/keys and the allow-list may (STYLE rule 4, 21)", p.ImportPath, imp))
		}
	}
	return bad
}

// httpIdentifiers parses p's non-test files and returns every name it
// selects from net/http (http.StatusOK -> "StatusOK").
func httpIdentifiers(p pkg) ([]string, error) {
	var names []string
	fset := token.NewFileSet()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		local := ""
		for _, is := range file.Imports {
			if path, _ := strconv.Unquote(is.Path.Value); path == "net/http" {
				local = "http"
				if is.Name != nil {
					local = is.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		if local == "." || local == "_" {
			names = append(names, "<"+local+" import>")
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
					names = append(names, sel.Sel.Name)
				}
			}
			return true
		})
	}
	return names, nil
}

func TestDomainPackagesImportNoDriverNorHTTP(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range domainViolations(pkgs, httpConstantsOnly, httpIdentifiers) {
		t.Error(v)
	}
	// The constants-only exception must be checking real code.
	for _, p := range pkgs {
		if _, ok := httpConstantsOnly[p.ImportPath]; ok && slices.Contains(p.Imports, "net/http") {
			if ids, err := httpIdentifiers(p); err != nil || len(ids) == 0 {
				t.Errorf("%s imports net/http but no use of it was found (%v): the check is blind", p.ImportPath, err)
			}
		}
	}
}

func TestOnlyAllowListImportsCryptoPrimitives(t *testing.T) {
	for _, v := range cryptoViolations(listPackages(t)) {
		t.Error(v)
	}
}

// constantsOnlyCheck runs the domain rule with identity allowed net/http
// constants only, to test that mechanism while no package uses it.
func constantsOnlyCheck(p []pkg, http []string) []string {
	allow := map[string]string{module + "/internal/identity": "a test"}
	got := domainViolations(p, allow, func(pkg) ([]string, error) { return http, nil })
	return slices.DeleteFunc(got, func(s string) bool { return strings.Contains(s, "no longer exists") })
}

// The checkers must catch what they are for: a test that cannot fail is
// a defect (rule 34).
func TestCheckersCatchViolations(t *testing.T) {
	record := module + "/internal/record"
	tests := []struct {
		name  string
		pkgs  []pkg
		http  []string // identifiers record selects from net/http
		check func([]pkg, []string) []string
		want  []string // substrings of expected violations; none = clean
	}{
		{
			name: "domain links sqlite through a dependency",
			pkgs: []pkg{{ImportPath: module + "/internal/audit", Deps: []string{module + "/internal/storage/sqlite", "modernc.org/sqlite/lib"}}},
			want: []string{"internal/audit links the SQL driver modernc.org/sqlite/lib"},
		},
		{
			name: "domain links pgx",
			pkgs: []pkg{{ImportPath: module + "/internal/fhir/search", Deps: []string{"github.com/jackc/pgx/v5"}}},
			want: []string{"internal/fhir/search links the SQL driver github.com/jackc/pgx/v5"},
		},
		{
			name: "authn imports net/http",
			pkgs: []pkg{{ImportPath: module + "/internal/authn", Imports: []string{"net/http"}}},
			want: []string{"internal/authn imports net/http"},
		},
		{
			name: "keys may import net/http",
			pkgs: []pkg{{ImportPath: module + "/internal/keys", Imports: []string{"net/http"}}},
		},
		{
			name: "record imports net/http",
			pkgs: []pkg{{ImportPath: record, Imports: []string{"net/http"}}},
			http: []string{"StatusOK"},
			want: []string{"internal/record imports net/http"},
		},
		{
			name:  "a constants-only package uses only constants",
			pkgs:  []pkg{{ImportPath: module + "/internal/identity", Imports: []string{"net/http"}}},
			http:  []string{"StatusOK", "MethodPost", "StatusText"},
			check: constantsOnlyCheck,
		},
		{
			name:  "a constants-only package uses an http.Client",
			pkgs:  []pkg{{ImportPath: module + "/internal/identity", Imports: []string{"net/http"}}},
			http:  []string{"StatusOK", "Client"},
			check: constantsOnlyCheck,
			want:  []string{"internal/identity uses net/http.Client"},
		},
		{
			name: "httpapi is not a domain package",
			pkgs: []pkg{{ImportPath: module + "/internal/httpapi", Imports: []string{"net/http"}, Deps: []string{"modernc.org/sqlite"}}},
		},
		{
			name:  "record imports crypto/hmac",
			pkgs:  []pkg{{ImportPath: record, Imports: []string{"crypto/hmac", "crypto/rand"}}},
			check: func(p []pkg, _ []string) []string { return cryptoViolations(p) },
			want:  []string{"internal/record imports the crypto primitive crypto/hmac"},
		},
		{
			name:  "httpapi imports tink",
			pkgs:  []pkg{{ImportPath: module + "/internal/httpapi", Imports: []string{"github.com/tink-crypto/tink-go/v2/aead"}}},
			check: func(p []pkg, _ []string) []string { return cryptoViolations(p) },
			want:  []string{"internal/httpapi imports the crypto primitive github.com/tink-crypto/tink-go/v2/aead"},
		},
		{
			name:  "authn may hash but not encrypt",
			pkgs:  []pkg{{ImportPath: module + "/internal/authn", Imports: []string{"crypto/sha256", "crypto/aes"}}},
			check: func(p []pkg, _ []string) []string { return cryptoViolations(p) },
			want:  []string{"internal/authn imports the crypto primitive crypto/aes"},
		},
		{
			name:  "audit/merkle may verify notes but not use x/crypto",
			pkgs:  []pkg{{ImportPath: module + "/internal/audit/merkle", Imports: []string{"golang.org/x/mod/sumdb/note", "golang.org/x/crypto/argon2", "crypto/tls"}}},
			check: func(p []pkg, _ []string) []string { return cryptoViolations(p) },
			want:  []string{"internal/audit/merkle imports the crypto primitive golang.org/x/crypto/argon2"},
		},
		{
			name:  "keys may import anything",
			pkgs:  []pkg{{ImportPath: module + "/internal/keys", Imports: []string{"crypto/aes", "golang.org/x/crypto/hkdf", "github.com/tink-crypto/tink-go/v2/aead"}}},
			check: func(p []pkg, _ []string) []string { return cryptoViolations(p) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := tt.check
			if check == nil {
				check = func(p []pkg, http []string) []string {
					got := domainViolations(p, httpConstantsOnly, func(pkg) ([]string, error) { return http, nil })
					// The synthetic lists omit most domain packages.
					return slices.DeleteFunc(got, func(s string) bool { return strings.Contains(s, "no longer exists") })
				}
			}
			got := check(tt.pkgs, tt.http)
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
