package archtest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// cliAllowed are the internal packages the CLI may import (ADR 0026).
// The CLI is a front end: it parses flags, calls what app builds and
// prints. Everything that opens or changes an instance goes through app
// (services, Provision, Serve, SeedDemo, Operator); besides app and
// config the CLI names only the vocabulary of the domains whose commands
// it fronts (types, parsers, sentinel errors) and tools that touch no
// instance. Never storage, a driver, keys, record, fhir, a front end or
// the web kernel: a new import here is an architecture decision.
var cliAllowed = map[string]string{
	"app":               "the composition root: every service of an instance",
	"config":            "loading the configuration and applying flags",
	"ident":             "references and owners",
	"identity":          "accounts' vocabulary: users, roles, their parsers and sentinel errors",
	"identity/account":  "the account service's type, sentinel errors and enrolment lifetime",
	"audit":             "the actor of an operator's change (audit.Agent) and event vocabulary",
	"audit/merkle":      "the outside verifier: audit verify --url, monitor and witness read a published log over HTTP as any auditor does",
	"authn/smart":       "client registrations and their sentinel errors",
	"authn/smart/scope": "parsing the scopes of a client registration",
	"authz":             "policy authoring: parse, test and lint Cedar files offline; actions' vocabulary",
	"keys/lifecycle":    "rotation's progress and options, the erasure status",
	"ledger":            "verify's report and sentinel errors",
	"synth":             "synth writes synthetic bundles to files; it touches no instance",
	"monitor/scenario":  "synth monitor writes a generated hospital and its access log to files; it touches no instance",
	"reimport":          "makes a Bundle's creates conditional so that importing it again creates nothing (ADR 0037); bytes in, bytes out, it touches no instance",
	"demo":              "the demo accounts file and its printout",
	"backup":            "backups' vocabulary (ADR 0048): the directory store, age recipients and identities, manifests and reports, verify (ciphertext and archive, no instance); create, restore and drill go through app",
	"monitor/alerts":    "monitoring's vocabulary (ADR 0046): alerts as JSON and TSV, the --since and source-name parsers, sentinel errors, the offline actor; the service itself comes from app.Monitor",
}

// cliImportViolations returns the CLI's internal imports outside allowed.
func cliImportViolations(pkgs []pkg, allowed map[string]string) []string {
	var out []string
	for _, p := range pkgs {
		if !match(module+"/internal/cli/...", p.ImportPath) {
			continue
		}
		for _, imp := range p.Imports {
			rel, ok := strings.CutPrefix(imp, module+"/internal/")
			if !ok {
				continue
			}
			if _, ok := allowed[rel]; !ok {
				out = append(out, fmt.Sprintf("%s imports %s: the CLI reaches an instance through app (ADR 0026); add to cliAllowed only vocabulary or a tool that touches no instance", strings.TrimPrefix(p.ImportPath, module+"/"), imp))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestCLIImportsOnlyAppConfigAndVocabulary(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range cliImportViolations(pkgs, cliAllowed) {
		t.Error(v)
	}
	for rel := range cliAllowed {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.ImportPath == module+"/internal/"+rel }) {
			t.Errorf("cliAllowed names internal/%s, which does not exist: update it", rel)
		}
	}
}

func TestCLIImportRuleBites(t *testing.T) {
	pkgs := []pkg{{ImportPath: module + "/internal/cli", Imports: []string{
		"fmt", module + "/internal/app", module + "/internal/record", module + "/internal/storage", module + "/internal/identity",
	}}}
	got := cliImportViolations(pkgs, cliAllowed)
	if len(got) != 2 || !strings.Contains(got[0], "/internal/record:") || !strings.Contains(got[1], "/internal/storage:") {
		t.Fatalf("violations %q, want record and storage", got)
	}
}
