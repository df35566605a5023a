package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/synth"
)

// request is one unit of work; resources counts what it writes.
type request struct {
	method, url string
	body        []byte
	resources   int
}

// workload draws the next request; it must be safe for concurrent use with
// distinct r.
type workload func(r *rand.Rand) request

func readLoad(base string, patients, observations []string) workload {
	return func(r *rand.Rand) request {
		if len(observations) > 0 && r.IntN(2) == 0 {
			return request{method: http.MethodGet, url: base + "/Observation/" + observations[r.IntN(len(observations))]}
		}
		return request{method: http.MethodGet, url: base + "/Patient/" + patients[r.IntN(len(patients))]}
	}
}

func searchLoad(base string, patients []string) workload {
	return func(r *rand.Rand) request {
		q := "patient=" + url.QueryEscape("Patient/"+patients[r.IntN(len(patients))]) +
			"&code=" + url.QueryEscape("http://loinc.org|8867-4")
		return request{method: http.MethodGet, url: base + "/Observation?" + q}
	}
}

// includeLoad is searchLoad with the patient included: one more
// narrowed search by id, decision and audit entry per page.
func includeLoad(base string, patients []string) workload {
	return func(r *rand.Rand) request {
		q := "patient=" + url.QueryEscape("Patient/"+patients[r.IntN(len(patients))]) +
			"&code=" + url.QueryEscape("http://loinc.org|8867-4") + "&_include=Observation:subject"
		return request{method: http.MethodGet, url: base + "/Observation?" + q}
	}
}

// chainLoad is searchLoad with the patient named through a chained
// parameter: the server first runs the inner search (Patient?_id=, as a
// search of the caller, decided and audited), then the outer one.
func chainLoad(base string, patients []string) workload {
	return func(r *rand.Rand) request {
		q := "patient._id=" + url.QueryEscape(patients[r.IntN(len(patients))]) +
			"&code=" + url.QueryEscape("http://loinc.org|8867-4")
		return request{method: http.MethodGet, url: base + "/Observation?" + q}
	}
}

// sortLoad asks for one random known patient's vital signs ordered by
// code, then newest first: code is stored as a keyed hash, so the server
// decrypts every match the caller may read and orders them (ADR 0038).
func sortLoad(base string, patients []string) workload {
	return func(r *rand.Rand) request {
		q := "patient=" + url.QueryEscape("Patient/"+patients[r.IntN(len(patients))]) +
			"&category=vital-signs&_sort=code,-date&_count=20"
		return request{method: http.MethodGet, url: base + "/Observation?" + q}
	}
}

// createLoad posts a heart-rate Observation, about the size and shape of a
// generated one, for a random known patient.
func createLoad(base string, patients []string) workload {
	return func(r *rand.Rand) request {
		at := synth.DefaultStart.Add(-time.Duration(r.Int64N(int64(5 * 365 * 24 * time.Hour))))
		body := fmt.Sprintf(`{"resourceType":"Observation","status":"final",`+
			`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital signs"}]}],`+
			`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart rate"},`+
			`"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,"issued":%q,`+
			`"valueQuantity":{"value":%d,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
			patients[r.IntN(len(patients))], at.Format(time.RFC3339), at.Add(3*time.Minute).Format("2006-01-02T15:04:05.000Z07:00"), 55+r.IntN(45))
		return request{method: http.MethodPost, url: base + "/Observation", body: []byte(body), resources: 1}
	}
}

// transactionLoad prepares c.bundles synthetic patient transactions (not
// measured), posts the shared provider directory they refer to, and cycles
// through the patients.
func (c *config) transactionLoad(ctx context.Context) (workload, error) {
	type prepared struct {
		body      []byte
		resources int
	}
	var shared []byte
	var list []prepared
	err := synth.Generate(ctx, synth.Options{Patients: c.bundles, Seed: c.seed}, func(name string, b []byte) error {
		if name == synth.SharedName {
			shared = bytes.Clone(b)
			return nil
		}
		list = append(list, prepared{bytes.Clone(b), bytes.Count(b, []byte(`"fullUrl":`))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generating patients: %w", err)
	}
	status, _, err := c.do(ctx, http.MethodPost, c.base, shared)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("posting the provider directory: status %d: %v", status, err)
	}
	var mu sync.Mutex
	next := 0
	return func(*rand.Rand) request {
		mu.Lock()
		p := list[next%len(list)]
		next++
		mu.Unlock()
		return request{method: http.MethodPost, url: c.base, body: p.body, resources: p.resources}
	}, nil
}

// result is what one mode measured.
type result struct {
	Mode         string         `json:"mode"`
	Clients      int            `json:"clients"`
	Seconds      float64        `json:"seconds"`
	Requests     int            `json:"requests"`
	Errors       int            `json:"errors"`
	ByStatus     map[string]int `json:"by_status"`
	ReqPerSec    float64        `json:"req_per_s"`
	ResPerSec    float64        `json:"resources_per_s,omitempty"`
	P50ms        float64        `json:"p50_ms"`
	P95ms        float64        `json:"p95_ms"`
	P99ms        float64        `json:"p99_ms"`
	MaxMs        float64        `json:"max_ms"`
	PeakRSSMiB   float64        `json:"server_peak_rss_mib,omitempty"`
	ServerHWMMiB float64        `json:"server_vmhwm_mib,omitempty"`
}

type clientStats struct {
	lat       []time.Duration
	status    map[string]int
	errors    int
	resources int
}

func okStatus(method string, status int) bool {
	if method == http.MethodPost {
		return status == http.StatusCreated || status == http.StatusOK
	}
	return status == http.StatusOK
}

// measure runs w with c.clients goroutines for c.duration (or
// c.maxRequests), all owned and awaited here.
func (c *config) measure(ctx context.Context, mode string, w workload) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var remaining chan struct{}
	if c.maxRequests > 0 {
		remaining = make(chan struct{}, c.maxRequests)
		for range c.maxRequests {
			remaining <- struct{}{}
		}
		close(remaining)
	}

	// The sampler runs until the clients have stopped.
	rss := &rssSampler{pid: c.pid}
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	var sampler, wg sync.WaitGroup
	if c.pid > 0 {
		sampler.Add(1)
		go func() { defer sampler.Done(); rss.run(sctx) }()
	}
	stats := make([]*clientStats, c.clients)
	start := time.Now()
	for i := range c.clients {
		st := &clientStats{status: map[string]int{}}
		stats[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c.seed), uint64(i)))
			for ctx.Err() == nil {
				if remaining != nil {
					if _, ok := <-remaining; !ok {
						return
					}
				}
				req := w(r)
				t0 := time.Now()
				status, _, err := c.do(ctx, req.method, req.url, req.body)
				el := time.Since(t0)
				if ctx.Err() != nil {
					return // cut by the deadline: not counted
				}
				st.lat = append(st.lat, el)
				switch {
				case err != nil:
					st.errors++
					st.status["transport"]++
				case !okStatus(req.method, status):
					st.errors++
					st.status[strconv.Itoa(status)]++
				default:
					st.status[strconv.Itoa(status)]++
					st.resources += req.resources
				}
			}
		}()
	}
	wg.Wait() // clients stop at the deadline or when the budget is spent
	stopSampler()
	sampler.Wait()
	elapsed := time.Since(start)

	res := &result{Mode: mode, Clients: c.clients, Seconds: elapsed.Seconds(), ByStatus: map[string]int{}}
	var all []time.Duration
	resources := 0
	for _, st := range stats {
		all = append(all, st.lat...)
		res.Errors += st.errors
		resources += st.resources
		for k, v := range st.status {
			res.ByStatus[k] += v
		}
	}
	res.Requests = len(all)
	res.ReqPerSec = float64(res.Requests) / elapsed.Seconds()
	if mode == "transaction" || mode == "create" {
		res.ResPerSec = float64(resources) / elapsed.Seconds()
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := min(len(all)-1, int(p*float64(len(all))))
		return float64(all[i].Microseconds()) / 1000
	}
	res.P50ms, res.P95ms, res.P99ms = pct(0.50), pct(0.95), pct(0.99)
	if len(all) > 0 {
		res.MaxMs = float64(all[len(all)-1].Microseconds()) / 1000
	}
	res.PeakRSSMiB, res.ServerHWMMiB = rss.peak(), rss.hwm()
	return res, nil
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "mode=%s clients=%d duration=%.1fs requests=%d errors=%d req/s=%.0f",
		r.Mode, r.Clients, r.Seconds, r.Requests, r.Errors, r.ReqPerSec)
	if r.ResPerSec > 0 {
		fmt.Fprintf(w, " resources/s=%.0f", r.ResPerSec)
	}
	fmt.Fprintf(w, " p50=%.2fms p95=%.2fms p99=%.2fms max=%.1fms", r.P50ms, r.P95ms, r.P99ms, r.MaxMs)
	if r.PeakRSSMiB > 0 {
		fmt.Fprintf(w, " server_peak_rss=%.0fMiB server_vmhwm=%.0fMiB", r.PeakRSSMiB, r.ServerHWMMiB)
	}
	keys := make([]string, 0, len(r.ByStatus))
	for k := range r.ByStatus {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s:%d", k, r.ByStatus[k])
	}
	fmt.Fprintf(w, " status={%s }\n", sb.String())
}

// rssSampler reads VmRSS and VmHWM of a process every 100 ms.
type rssSampler struct {
	pid         int
	mu          sync.Mutex
	maxRSS, hwK int64 // KiB
}

func (s *rssSampler) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			s.sample()
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"VmRSS:", "VmHWM:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if k == "VmRSS:" {
					s.maxRSS = max(s.maxRSS, n)
				} else {
					s.hwK = n
				}
			}
		}
	}
}

func (s *rssSampler) peak() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.maxRSS) / 1024
}
func (s *rssSampler) hwm() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.hwK) / 1024 }
