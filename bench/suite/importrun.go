package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// importResult is one timed load of the synthetic data into a server.
type importResult struct {
	Server    string  `json:"server"` // "phivault" or "baseline"
	Store     string  `json:"store"`  // "sqlite" or "postgres"
	Resources int     `json:"resources"`
	Seconds   float64 `json:"seconds"` // as the importer reports it (from its first Bundle to its last)
	// WallSeconds includes start-up (opening the database, compiling
	// schemas) and shutdown.
	WallSeconds float64 `json:"wall_seconds"`
	ResPerSec   float64 `json:"resources_per_s"`
	// Tenths is the rate over each tenth of the resources, in import
	// order: the first against the last says whether the import slows as
	// the index grows. Empty when the progress output had too few points.
	Tenths     []float64 `json:"resources_per_s_by_tenth,omitempty"`
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	// CPUCores is the process's CPU time (user and system) over its wall
	// time: how many cores it kept busy on average.
	CPUCores float64 `json:"cpu_cores"`
}

// cpuCores is ps's CPU time over wall seconds.
func cpuCores(ps *os.ProcessState, wall float64) float64 {
	if ps == nil || wall <= 0 {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds() / wall
}

// The import's progress bar describes itself as "importing: N new, M
// already present" (internal/cli/import.go) on stderr, redrawn with \r
// at most every 100 ms; its percentage is of the bytes read.
var (
	progressRE = regexp.MustCompile(`importing: (\d+) new, (\d+) already present\s+(\d+)%`)
	// The summary line on stdout: "total  in  accepted  new  present   (12.3s, 3456 resources/s)".
	summaryRE = regexp.MustCompile(`^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\(([0-9.]+)s, `)
	// bench/baseline's last log line: msg=imported ... resources=N seconds=S.
	baselineRE = regexp.MustCompile(`msg=imported .*resources=(\d+) seconds=([0-9.e+-]+)`)
)

// sample is the import's progress at t seconds after the process started.
type sample struct {
	t float64
	n int
}

// importPhivault runs "phivault import --data dir synthDir" with env,
// reads its progress and summary, and reports each tenth of the way on
// the suite's progress log.
func (s *suite) importPhivault(ctx context.Context, store, dir string, env []string) (*importResult, error) {
	cmd := exec.CommandContext(ctx, s.bins.phivault, "import", "--data", dir, s.synthDir)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting phivault import: %w", err)
	}
	var (
		mu       sync.Mutex
		samples  []sample
		errTail  bytes.Buffer
		accepted int     // from the summary line
		secs     float64 // the importer's own time, from the summary line
		summaryT float64 // when the summary line came
		wg       sync.WaitGroup
	)
	wg.Add(2)
	go func() { // owned here: ends at the pipe's EOF, awaited below
		defer wg.Done()
		lastTenth := 0
		// Drained to the end, whatever the scanner makes of it, so
		// that the importer never blocks on a full pipe.
		defer func() { _, _ = io.Copy(io.Discard, stderr) }()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sc.Split(scanCRLF)
		for sc.Scan() {
			line := sc.Text()
			n, pct, ok := parseProgress(line)
			if !ok {
				mu.Lock()
				if errTail.Len() < 64<<10 {
					errTail.WriteString(line + "\n")
				}
				mu.Unlock()
				continue
			}
			t := time.Since(start).Seconds()
			mu.Lock()
			samples = append(samples, sample{t: t, n: n})
			mu.Unlock()
			if pct/10 > lastTenth {
				lastTenth = pct / 10
				s.progress.printf("import into phivault (%s): %d%% of the bytes, %d resources, %.0f resources/s so far", storeName(store), pct, n, float64(n)/t)
			}
		}
	}()
	go func() { // owned here: ends at the pipe's EOF, awaited below
		defer wg.Done()
		defer func() { _, _ = io.Copy(io.Discard, stdout) }()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if n, sec, ok := parseSummary(sc.Text()); ok {
				mu.Lock()
				accepted, secs, summaryT = n, sec, time.Since(start).Seconds()
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	wall := time.Since(start).Seconds()
	if err != nil {
		return nil, fmt.Errorf("phivault import (%s): %w: %s", store, err, tail(errTail.String()))
	}
	if accepted == 0 || secs <= 0 {
		return nil, fmt.Errorf("phivault import (%s) accepted %d resources in %.1fs", store, accepted, secs)
	}
	// The importer's clock starts after the database is open; its
	// summary comes right after its last Bundle.
	t0 := summaryT - secs
	samples = append(samples, sample{t: summaryT, n: accepted})
	return &importResult{
		Server: "phivault", Store: store, Resources: accepted, Seconds: secs, WallSeconds: wall,
		ResPerSec: float64(accepted) / secs, Tenths: tenths(samples, t0, accepted),
		PeakRSSMiB: peakRSSMiB(cmd.ProcessState), CPUCores: cpuCores(cmd.ProcessState, wall),
	}, nil
}

// parseProgress reads the resources so far (new and already present) and
// the percentage of the bytes from one redraw of the progress bar.
func parseProgress(line string) (n, pct int, ok bool) {
	m := progressRE.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	nw, _ := strconv.Atoi(m[1])
	pr, _ := strconv.Atoi(m[2])
	pct, _ = strconv.Atoi(m[3])
	return nw + pr, pct, true
}

// parseSummary reads the accepted resources and the importer's seconds
// from its "total" line.
func parseSummary(line string) (accepted int, secs float64, ok bool) {
	m := summaryRE.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	accepted, _ = strconv.Atoi(m[2])
	secs, _ = strconv.ParseFloat(m[5], 64)
	return accepted, secs, true
}

// tenths returns the rate over each tenth of total resources, from the
// progress samples (time, resources so far) and the time t0 at which the
// count was 0. The moment each tenth was crossed is interpolated between
// the samples around it. It returns nil when the samples are too coarse
// to place the tenths: when two successive points are more than a
// twentieth of the total apart, as in an import of a few dozen patients
// (a Bundle is about 78 resources, the bar redraws at most every 100 ms).
func tenths(samples []sample, t0 float64, total int) []float64 {
	if total <= 0 {
		return nil
	}
	// The two output pipes are read apart: order by time, keep each
	// count's first moment, drop what came before t0.
	pts := []sample{{t: t0, n: 0}}
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b sample) int { return cmp.Compare(a.t, b.t) })
	for _, p := range sorted {
		if p.t > t0 && p.n > pts[len(pts)-1].n {
			pts = append(pts, p)
		}
	}
	if pts[len(pts)-1].n < total {
		return nil
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].n-pts[i-1].n > total/20 {
			return nil
		}
	}
	// crossing returns when the count first reached target.
	crossing := func(target float64) float64 {
		for i := 1; i < len(pts); i++ {
			a, b := pts[i-1], pts[i]
			if float64(b.n) >= target {
				return a.t + (b.t-a.t)*(target-float64(a.n))/float64(b.n-a.n)
			}
		}
		return pts[len(pts)-1].t
	}
	out := make([]float64, 10)
	prev := t0
	for k := 1; k <= 10; k++ {
		t := crossing(float64(total) * float64(k) / 10)
		if t <= prev {
			return nil
		}
		out[k-1] = float64(total) / 10 / (t - prev)
		prev = t
	}
	return out
}

// scanCRLF splits on \r or \n: a progress bar redraws its line with \r.
func scanCRLF(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\r' || c == '\n' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// loadBaseline loads the synthetic data into a fresh baseline database
// (bench/baseline -load -load-only) and reads its figures from its log,
// which it keeps in logPath.
func (s *suite) loadBaseline(ctx context.Context, db, logPath string) (*importResult, error) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	var log bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bins.baseline, "-db", db, "-load", s.synthDir, "-load-only")
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if werr := os.WriteFile(logPath, log.Bytes(), 0o600); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("bench/baseline -load: %w: %s", err, tail(log.String()))
	}
	n, secs, err := parseBaselineLog(&log)
	if err != nil {
		return nil, err
	}
	return &importResult{
		Server: "baseline", Store: "sqlite", Resources: n, Seconds: secs, WallSeconds: wall,
		ResPerSec: float64(n) / secs, PeakRSSMiB: peakRSSMiB(cmd.ProcessState), CPUCores: cpuCores(cmd.ProcessState, wall),
	}, nil
}

// parseBaselineLog reads the resources and seconds of bench/baseline's
// "imported" log line.
func parseBaselineLog(r io.Reader) (resources int, seconds float64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := baselineRE.FindStringSubmatch(sc.Text()); m != nil {
			resources, _ = strconv.Atoi(m[1])
			seconds, _ = strconv.ParseFloat(m[2], 64)
		}
	}
	if resources == 0 || seconds <= 0 || math.IsNaN(seconds) {
		return 0, 0, errors.New("bench/baseline logged no import figures")
	}
	return resources, seconds, sc.Err()
}
