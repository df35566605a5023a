package archtest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// telemetry are the instrumentation libraries (ADR 0040): only package
// observe and the composition root import them. The domains declare a
// one-method observer or a Stats method and are handed observe's
// implementation, so neither a metric nor a span can be added where a
// reviewer of the domain would not see its labels.
var telemetry = []string{"github.com/prometheus/...", "go.opentelemetry.io/..."}

// telemetryAllowed says which packages may import them, and why.
var telemetryAllowed = map[string]string{
	module + "/internal/observe": "the metrics, the tracing and their exposure live here (ADR 0040)",
	module + "/internal/app":     "the composition root: WithSpanExporter takes the exporter tests read spans from",
}

// telemetryViolations returns the packages outside the allow-list that
// import a telemetry library.
func telemetryViolations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		if _, ok := telemetryAllowed[p.ImportPath]; ok {
			continue
		}
		for _, imp := range p.Imports {
			if matchAny(telemetry, imp) {
				bad = append(bad, fmt.Sprintf("%s imports %s: only internal/observe and the composition root may (ADR 0040)", strings.TrimPrefix(p.ImportPath, module+"/"), imp))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func TestOnlyObserveImportsTelemetry(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range telemetryViolations(pkgs) {
		t.Error(v)
	}
	for allowed := range telemetryAllowed {
		uses := func(p pkg) bool {
			return p.ImportPath == allowed && slices.ContainsFunc(p.Imports, func(i string) bool { return matchAny(telemetry, i) })
		}
		if !slices.ContainsFunc(pkgs, uses) {
			t.Errorf("%s is allowed telemetry but imports none: update the rule", allowed)
		}
	}
}

func TestTelemetryRuleBites(t *testing.T) {
	pkgs := []pkg{
		{ImportPath: module + "/internal/authz", Imports: []string{"context", "github.com/prometheus/client_golang/prometheus"}},
		{ImportPath: module + "/internal/httpapi", Imports: []string{"go.opentelemetry.io/otel/trace"}},
		{ImportPath: module + "/internal/observe", Imports: []string{"github.com/prometheus/client_golang/prometheus"}},
	}
	got := telemetryViolations(pkgs)
	if len(got) != 2 || !strings.HasPrefix(got[0], "internal/authz imports") || !strings.HasPrefix(got[1], "internal/httpapi imports") {
		t.Errorf("violations %q, want authz and httpapi", got)
	}
}
