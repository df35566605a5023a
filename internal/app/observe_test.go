package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

const metricsToken = "test-metrics-token-0123456789abcdef"

// fhirTraffic creates a patient and reads, searches and misses it, and
// returns the patient's id: every label and attribute must stay free
// of it.
func fhirTraffic(t *testing.T, s *apitest.Server) string {
	t.Helper()
	id := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female", "birthDate": "1970-01-01"})
	s.Do(t, http.MethodGet, "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
	s.Do(t, http.MethodGet, "/fhir/Patient?_id="+id, nil, nil).Want(t, http.StatusOK)
	s.Do(t, http.MethodGet, "/fhir/Patient/"+id+"-nosuch", nil, nil).Want(t, http.StatusNotFound)
	s.Do(t, http.MethodGet, "/no/route/"+id, nil, nil)                                                                             // the web UI's catch-all pattern "/"
	s.Do(t, http.MethodGet, "/fhir/Patient/"+id, nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusUnauthorized) // the outer mux's "/fhir/"
	s.Do(t, http.MethodGet, "/FHIR/Patient/"+id, nil, nil)                                                                         // refused before any mux: "other"
	s.Do(t, http.MethodGet, "/metrics?x="+id, nil, apitest.H{"Authorization": apitest.NoAuth})                                     // a refused scrape
	return id
}

// families returns the metric family names of an exposition (text
// format) and the whole body.
func families(t *testing.T, body string) map[string]bool {
	t.Helper()
	fams := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = true
		}
	}
	return fams
}

// sample returns the value of the series named exactly series.
func sample(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// wantFamilies are the families a server exports once it served FHIR
// requests (names only: values are timings and counts).
var wantFamilies = []string{
	"phivault_http_requests_total", "phivault_http_request_errors_total", "phivault_http_request_duration_seconds",
	"phivault_audit_batch_size", "phivault_audit_batch_wait_seconds", "phivault_audit_batch_commit_seconds",
	"phivault_audit_batch_failures_total", "phivault_audit_record_wait_seconds", "phivault_audit_log_pending_records",
	"phivault_authz_decision_seconds", "phivault_cache_hits_total", "phivault_cache_misses_total", "phivault_build_info",
	"go_sql_open_connections", "go_sql_in_use_connections", "go_sql_wait_count_total",
	"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
}

func TestMetricsOnTheMainListenerNeedTheToken(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			s := apitest.StartWith(t, driver, func(c *config.Config) { c.Observability.SetMetricsToken(metricsToken) })
			testMetricsNeedTheToken(t, s)
		})
	}
}

func testMetricsNeedTheToken(t *testing.T, s *apitest.Server) {
	id := fhirTraffic(t, s)

	for name, auth := range map[string]string{
		"no token":        apitest.NoAuth,
		"API token":       "Bearer " + s.Token(),
		"wrong token":     "Bearer " + strings.ToUpper(metricsToken),
		"basic":           "Basic " + metricsToken,
		"token as prefix": "Bearer " + metricsToken[:len(metricsToken)-1],
	} {
		r := s.Do(t, http.MethodGet, "/metrics", nil, apitest.H{"Authorization": auth})
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: /metrics answered %d, want 401", name, r.Status)
		}
		if strings.Contains(string(r.Body), "phivault_") {
			t.Errorf("%s: the refusal carries metrics", name)
		}
	}

	r := s.Do(t, http.MethodGet, "/metrics", nil, apitest.H{"Authorization": "Bearer " + metricsToken}).Want(t, http.StatusOK)
	body := string(r.Body)
	fams := families(t, body)
	for _, f := range wantFamilies {
		if !fams[f] {
			t.Errorf("family %s not exported", f)
		}
	}
	// Every cache was used by the traffic: its lookups are counted.
	for _, cache := range []string{"api_token", "dek", "authz_subject", "authz_patient", "authz_filter"} {
		lookups := 0.0
		for _, fam := range []string{"phivault_cache_hits_total", "phivault_cache_misses_total"} {
			v, ok := sample(body, fam+`{cache="`+cache+`"}`)
			if !ok {
				t.Errorf("%s of cache %s not exported", fam, cache)
			}
			lookups += v
		}
		if lookups == 0 {
			t.Errorf("cache %s counted no lookup", cache)
		}
	}
	for _, route := range []string{`route="POST /fhir/{type}"`, `route="GET /fhir/{type}/{id}"`, `route="GET /fhir/{type}"`, `route="other"`} {
		if !strings.Contains(body, route) {
			t.Errorf("no series with %s", route)
		}
	}
	if strings.Contains(body, id) {
		t.Errorf("a metric carries the patient id %s", id)
	}
	if strings.Contains(body, "/no/route") || strings.Contains(body, "_id=") {
		t.Error("a metric carries a request path or query")
	}
	// Every route label is a mux pattern or "other".
	for _, m := range regexp.MustCompile(`route="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if m[1] != "other" && !strings.Contains(m[1], "/") {
			t.Errorf("route label %q is neither a pattern nor other", m[1])
		}
		if strings.ContainsAny(m[1], "?=") {
			t.Errorf("route label %q carries a query", m[1])
		}
	}
}

func TestMetricsAnswer404WithoutAToken(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	fhirTraffic(t, s)
	for _, auth := range []string{apitest.NoAuth, "Bearer " + s.Token()} {
		r := s.Do(t, http.MethodGet, "/metrics", nil, apitest.H{"Authorization": auth})
		if r.Status != http.StatusNotFound || strings.Contains(string(r.Body), "phivault_") {
			t.Errorf("/metrics without a configured token answered %d (%.40q), want 404", r.Status, r.Body)
		}
	}
	side, err := s.App.StartSideListeners()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = side.Close(t.Context()) })
	if side.MetricsAddr() != "" || side.PprofAddr() != "" {
		t.Errorf("side listeners on by default: metrics %q, pprof %q", side.MetricsAddr(), side.PprofAddr())
	}
	if r := s.Do(t, http.MethodGet, "/debug/pprof/", nil, nil); r.Status == http.StatusOK {
		t.Error("pprof is served on the main listener")
	}
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestSideListeners(t *testing.T) {
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) {
		c.Observability.MetricsListen = "127.0.0.1:0"
		c.Observability.PprofListen = "127.0.0.1:0"
	})
	fhirTraffic(t, s)
	side, err := s.App.StartSideListeners()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = side.Close(t.Context()) })
	if side.MetricsAddr() == "" || side.PprofAddr() == "" {
		t.Fatalf("side listeners: metrics %q, pprof %q", side.MetricsAddr(), side.PprofAddr())
	}

	// Loopback metrics without a token: served as is.
	st, body := get(t, "http://"+side.MetricsAddr()+"/metrics", "")
	if st != http.StatusOK || !families(t, body)["phivault_http_requests_total"] {
		t.Errorf("metrics listener: %d, families %v", st, len(families(t, body)))
	}
	if st, _ := get(t, "http://"+side.MetricsAddr()+"/debug/pprof/", ""); st != http.StatusNotFound {
		t.Errorf("metrics listener serves pprof: %d", st)
	}

	pprof := "http://" + side.PprofAddr() + "/debug/pprof/"
	for name, auth := range map[string]string{"none": "", "unknown token": "Bearer pv_nosuchtoken", "metrics-style": "Bearer " + metricsToken} {
		if st, body := get(t, pprof, auth); st != http.StatusUnauthorized || strings.Contains(body, "goroutine") {
			t.Errorf("pprof with %s: %d, want 401", name, st)
		}
	}
	if st, body := get(t, pprof, "Bearer "+s.Token()); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof with the admin token: %d %.60q", st, body)
	}
	if st, body := get(t, pprof+"goroutine?debug=1", "Bearer "+s.Token()); st != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.60q", st, body)
	}
	if st, _ := get(t, pprof+"cmdline", "Bearer "+s.Token()); st == http.StatusOK {
		// pprof.Index answers an unknown profile name 404.
		t.Error("pprof serves the command line (it can carry --postgres with a password)")
	}
	if strings.Contains(s.Logs(), s.Token()) {
		t.Error("a log line carries the API token")
	}
	if !strings.Contains(s.Logs(), "pprof is ON") {
		t.Error("no start-up line says pprof is on")
	}
}

func TestTracesNameRoutesAndCarryNoIDs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) { c.Observability.Tracing.SampleRatio = 1 }, app.WithSpanExporter(exp))
	id := fhirTraffic(t, s)

	spans := exp.GetSpans()
	names := map[string]bool{}
	for _, sp := range spans {
		names[sp.Name] = true
		if strings.Contains(sp.Name, id) {
			t.Errorf("span name %q carries the patient id", sp.Name)
		}
		for _, kv := range sp.Attributes {
			v := kv.Value.String()
			if strings.Contains(v, id) || strings.Contains(v, "?") || strings.Contains(v, s.Token()) || strings.Contains(v, "/no/route") {
				t.Errorf("span %q attribute %s=%q carries an id, query, path or token", sp.Name, kv.Key, v)
			}
		}
		for _, ev := range sp.Events {
			for _, kv := range ev.Attributes {
				if strings.Contains(kv.Value.String(), id) {
					t.Errorf("span %q event %q carries the patient id", sp.Name, ev.Name)
				}
			}
		}
	}
	for _, want := range []string{"GET /fhir/{type}/{id}", "POST /fhir/{type}", "GET /fhir/{type}", "other", "authz.decide", "audit.record"} {
		if !names[want] {
			t.Errorf("no span %q; got %v", want, names)
		}
	}
	// The read's span has the route, method and status attributes.
	for _, sp := range spans {
		if sp.Name != "GET /fhir/{type}/{id}" {
			continue
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["http.route"] != "GET /fhir/{type}/{id}" || attrs["http.request.method"] != "GET" || attrs["http.response.status_code"] == "" {
			t.Errorf("read span attributes %v", attrs)
		}
	}
}

// The Grafana dashboard queries only metrics the server exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	s := apitest.StartWith(t, "sqlite", func(c *config.Config) { c.Observability.SetMetricsToken(metricsToken) })
	fhirTraffic(t, s)
	body := string(s.Do(t, http.MethodGet, "/metrics", nil, apitest.H{"Authorization": "Bearer " + metricsToken}).Want(t, http.StatusOK).Body)
	fams := families(t, body)

	raw, err := os.ReadFile("../../docs/grafana-phivault.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	metric := regexp.MustCompile(`\b(phivault_[a-z_]+|go_[a-z_]+|process_[a-z_]+)\b`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			names := metric.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: expression %q names no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suf); ok && fams[b] {
						base = b
					}
				}
				if !fams[base] {
					t.Errorf("panel %q: metric %s is not exported", p.Title, n)
				}
			}
		}
	}
	if exprs < 10 {
		t.Errorf("dashboard has %d expressions, want the ten panels of docs/observability.md", exprs)
	}
}
