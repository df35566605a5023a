package main

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseImportOutput reads a real "phivault import" run of 20
// patients (testdata: its stderr, redrawn with \r, and its stdout).
func TestParseImportOutput(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "import-progress.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Split(scanCRLF)
	var ns, pcts []int
	for sc.Scan() {
		if n, pct, ok := parseProgress(sc.Text()); ok {
			ns = append(ns, n)
			pcts = append(pcts, pct)
		}
	}
	if len(ns) < 5 {
		t.Fatalf("read %d progress points, want the redraws of the bar", len(ns))
	}
	if ns[0] != 120 || ns[len(ns)-1] != 1554 || pcts[len(pcts)-1] != 100 {
		t.Errorf("progress from %d to %d resources (last %d%%), want 120 to 1554 (100%%)", ns[0], ns[len(ns)-1], pcts[len(pcts)-1])
	}
	if !slices.IsSorted(ns) {
		t.Errorf("progress counts go backwards: %v", ns)
	}

	out, err := os.ReadFile(filepath.Join("testdata", "import-summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(string(out)) {
		if n, secs, ok := parseSummary(strings.TrimSpace(line)); ok {
			found = true
			if n != 1554 || secs != 14.3 {
				t.Errorf("summary: %d resources in %vs, want 1554 in 14.3s", n, secs)
			}
		}
	}
	if !found {
		t.Error("no summary line found")
	}
	if _, _, ok := parseProgress("importing   5% |██ | (1 MB/9 MB)"); ok {
		t.Error("a bar without the resource counts was read as progress")
	}
}

func TestTenths(t *testing.T) {
	// ramp returns samples every step resources from n0 (exclusive) to
	// n1 at rate resources/s, starting at t.
	ramp := func(t, rate float64, n0, n1, step int) []sample {
		var out []sample
		for n := n0 + step; n <= n1; n += step {
			out = append(out, sample{t: t + float64(n-n0)/rate, n: n})
		}
		return out
	}
	tests := []struct {
		name    string
		samples []sample
		t0      float64
		total   int
		want    []float64 // nil: no tenths
	}{
		{
			name: "steady", t0: 1, total: 1000, samples: ramp(1, 100, 0, 1000, 10),
			want: []float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100},
		},
		{
			name: "slowing", t0: 0, total: 1000,
			samples: append(ramp(0, 500, 0, 500, 25), ramp(1, 125, 500, 1000, 25)...),
			want:    []float64{500, 500, 500, 500, 500, 125, 125, 125, 125, 125},
		},
		{
			// The summary (read from stdout) may arrive before the last
			// redraws of the bar (stderr); a count seen twice keeps its
			// first moment; points before t0 do not count.
			name: "out of order, repeated and early points", t0: 10, total: 100,
			samples: append([]sample{{t: 9, n: 5}, {t: 20, n: 100}}, append(ramp(10, 10, 0, 100, 5), sample{t: 19.9, n: 95}, sample{t: 30, n: 100})...),
			want:    []float64{10, 10, 10, 10, 10, 10, 10, 10, 10, 10},
		},
		{name: "too coarse: a jump of more than a twentieth", t0: 0, total: 100, samples: ramp(0, 10, 0, 100, 6)},
		{name: "never reaches the total", t0: 0, total: 100, samples: ramp(0, 10, 0, 90, 5)},
		{name: "nothing imported", t0: 0, total: 0, samples: []sample{{1, 0}, {2, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tenths(tt.samples, tt.t0, tt.total)
			if len(got) != len(tt.want) {
				t.Fatalf("tenths = %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-6 {
					t.Fatalf("tenths = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	const secret = "pvt_SECRETSECRET"
	good := "phivault data directory created: d\n\nAdmin API token (shown once; store it in a password manager):\n\n  " + secret + "\n\nSecurity admin \"admin\"\n"
	tok, err := parseToken([]byte(good))
	if err != nil || tok != secret {
		t.Fatalf("parseToken = %q, %v; want the token", tok, err)
	}
	for name, out := range map[string]string{
		"no token line": "phivault data directory created: d\n",
		"not a token":   "Admin API token (shown once):\n\n  " + secret + " and more\n",
	} {
		_, err := parseToken([]byte(out))
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error %q quotes the output", name, err)
		}
	}
}

func TestSetConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "phivault.json")
	orig := `{"server":{"listen":"127.0.0.1:1"},"limits":{"max_body_bytes":16777216,"max_connections":512,"max_connections_per_address":32}}`
	if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := setConfig(p, "limits", "max_connections_per_address", 0); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var got struct {
		Server map[string]any
		Limits map[string]json.Number
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Limits["max_connections_per_address"] != "0" || got.Limits["max_body_bytes"] != "16777216" ||
		got.Limits["max_connections"] != "512" || got.Server["listen"] != "127.0.0.1:1" {
		t.Errorf("after setConfig: %s", b)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 12.34: "12.3", 100: "100", 1554: "1,554", 779395: "779,395", 1234567.6: "1,234,568"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestRowsWithoutPostgres: a run on SQLite alone has every row but the
// PostgreSQL ones; a mode with failed requests is not met.
func TestRowsWithoutPostgres(t *testing.T) {
	var runs []*loadRun
	for _, m := range suiteModes() {
		servers := []string{"phivault"}
		if m.baseline {
			servers = append(servers, "baseline")
		}
		for _, srv := range servers {
			r := &loadResult{Mode: m.name, Requests: 100, ReqPerSec: 20000, ResPerSec: 6000, P50ms: 1, P95ms: 2, P99ms: 3, PeakRSSMiB: 100}
			if m.name == "create" && srv == "phivault" {
				r.Errors = 3
			}
			runs = append(runs, &loadRun{Server: srv, Store: "sqlite", Round: 1, Mode: m.name, Result: r})
		}
	}
	imports := []*importResult{
		{Server: "phivault", Store: "sqlite", Resources: 1000, ResPerSec: 6000, Tenths: []float64{6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 5000}, PeakRSSMiB: 300},
		{Server: "baseline", Store: "sqlite", Resources: 1000, ResPerSec: 8000, PeakRSSMiB: 50},
	}
	rows := buildRows(runs, imports, 10, nil)
	var ids []string
	met := map[string]string{}
	for _, r := range rows {
		ids = append(ids, r.ID)
		met[r.ID] = r.Met
	}
	want := []string{"read", "search", "include", "chain", "create", "transaction-sqlite", "import-sqlite", "import-growth-sqlite", "memory-load", "memory-import"}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows %v, want %v", ids, want)
	}
	for id, v := range map[string]string{
		"read": "met", "search": "met", "include": "met", "create": "not met (3 failed requests)",
		"transaction-sqlite": "met", "import-sqlite": "met", "import-growth-sqlite": "not met", "memory-load": "met", "memory-import": "stated",
	} {
		if met[id] != v {
			t.Errorf("row %s: %q, want %q", id, met[id], v)
		}
	}
}

// TestSynthReuse: a completed data set is reused without running
// phivault; an interrupted one (no marker) is generated again.
func TestSynthReuse(t *testing.T) {
	work := t.TempDir()
	var log strings.Builder
	s := &suite{opt: options{patients: 3, seed: 7, work: work}, progress: &progress{w: &log},
		bins: binaries{phivault: filepath.Join(work, "no-such-phivault")}}
	dir := filepath.Join(work, "synth-3-seed7")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.synth(t.Context()); err == nil {
		t.Fatal("an incomplete data set was reused")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, synthCompleteFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.synth(t.Context())
	if err != nil || got != dir || !strings.Contains(log.String(), "reusing") {
		t.Fatalf("synth = %q, %v (log %q); want %q reused", got, err, log.String(), dir)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-work", "w", "-phivault", "bin/pv", "-pg-modes", "transaction,read"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(o.work) || o.out != filepath.Join(o.work, "results.json") || !filepath.IsAbs(o.phivault) ||
		o.baseline != "" || !slices.Equal(o.pgModes, []string{"transaction", "read"}) || o.patients != defaultPatients {
		t.Errorf("options %+v", o)
	}
	for _, bad := range [][]string{{"-rounds", "0"}, {"-pg-modes", "sort"}, {"-duration", "0s"}, {"extra"}} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
