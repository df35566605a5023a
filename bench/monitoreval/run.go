package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/balp"
	"github.com/phivault/phivault/internal/monitor/fhirctx"
	"github.com/phivault/phivault/internal/monitor/scenario"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("monitoreval", flag.ContinueOnError)
	seeds := fs.String("seeds", "1,2,3", "comma-separated seeds")
	sizes := fs.String("sizes", "small,medium", "comma-separated sizes: small, medium, large")
	out := fs.String("out", filepath.Join(os.TempDir(), "monitoreval"), "directory for the generated files")
	speed := fs.Bool("speed", false, "measure ingest and scoring speed instead of detection quality")
	events := fs.Int64("events", 5_000_000, "events of the speed run")
	reuse := fs.Bool("reuse", false, "reuse the files of an earlier run in -out (same generator version only)")
	score := fs.String("score", "", "internal: score DIR (context.json, events.ndjson) and print JSON figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *score != "" {
		f, err := scoreDir(ctx, *score)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(f)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating -out: %w", err)
	}
	if *speed {
		return speedRun(ctx, *out, *events, *reuse)
	}
	var seedList []int64
	for _, s := range strings.Split(*seeds, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("reading -seeds: %q is not a number", s)
		}
		seedList = append(seedList, n)
	}
	for _, size := range strings.Split(*sizes, ",") {
		size = strings.TrimSpace(size)
		var results []result
		for _, seed := range seedList {
			o, err := scenario.Size(size, seed)
			if err != nil {
				return err
			}
			dir := filepath.Join(*out, fmt.Sprintf("%s-seed%d", size, seed))
			if err := generate(o, dir, *reuse); err != nil {
				return err
			}
			res, err := evaluate(ctx, dir)
			if err != nil {
				return fmt.Errorf("%s seed %d: %w", size, seed, err)
			}
			res.seed = seed
			results = append(results, res)
			fmt.Fprintf(os.Stderr, "%s seed %d: %d events in %.1fs, %d alerts, precision %.3f, macro recall %.3f\n",
				size, seed, res.figures.Events, res.figures.Seconds, res.figures.Alerts, res.precision(), res.macro(false))
		}
		printTable(os.Stdout, size, scenario.Options{}, results)
	}
	return nil
}

// generate writes the three files of o into dir (unless reuse and they
// are there).
func generate(o scenario.Options, dir string, reuse bool) error {
	if _, err := os.Stat(filepath.Join(dir, "truth.tsv")); err == nil && reuse {
		return nil
	}
	_ = os.Remove(filepath.Join(dir, "truth.tsv"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s, err := scenario.New(o)
	if err != nil {
		return err
	}
	write := func(name string, fn func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name+".tmp"))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name))
	}
	if err := write("context.json", s.WriteContext); err != nil {
		return err
	}
	if err := write("events.ndjson", func(w io.Writer) error { _, err := s.WriteEvents(w); return err }); err != nil {
		return err
	}
	return write("truth.tsv", s.WriteTruth) // last: it marks the set complete
}

// figures are what one scoring run measured.
type figures struct {
	Events    int64           `json:"events"`              // monitor.Events fed to the engine
	Lines     int             `json:"lines"`               // AuditEvent lines read
	BadLines  int             `json:"bad_lines"`           // lines the parser refused
	Seconds   float64         `json:"seconds"`             // parse context + stream events + engine + alerts
	Context   float64         `json:"context_s"`           // of which parsing the context
	ContextMB float64         `json:"context_mib"`         // heap in use after parsing the context
	PeakRSSkB int64           `json:"peak_rss_kb"`         // VmHWM of this process
	CPU       float64         `json:"cpu_s"`               // user+system CPU of this process (a shared machine's wall clock says little)
	CtxCPU    float64         `json:"context_cpu_s"`       // of which parsing the context
	CtxHWMkB  int64           `json:"context_peak_rss_kb"` // VmHWM right after parsing the context
	Alerts    int             `json:"alerts"`
	List      []monitor.Alert `json:"-"`
}

// scoreDir runs the real path over dir: context through fhirctx, events
// through balp, the engine, its alerts (collected every 100,000 events
// as a continuous source would, then the final ones).
func scoreDir(ctx context.Context, dir string) (figures, error) {
	var f figures
	start := time.Now()
	cf, err := os.Open(filepath.Join(dir, "context.json"))
	if err != nil {
		return f, err
	}
	d, err := fhirctx.Parse(bufio.NewReaderSize(cf, 1<<20))
	cf.Close()
	if err != nil {
		return f, fmt.Errorf("parsing the context: %w", err)
	}
	f.Context = time.Since(start).Seconds()
	f.CtxCPU = cpuSeconds()
	f.CtxHWMkB = vmHWM()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f.ContextMB = float64(ms.HeapInuse) / (1 << 20)
	ef, err := os.Open(filepath.Join(dir, "events.ndjson"))
	if err != nil {
		return f, err
	}
	defer ef.Close()
	rd := balp.NewReader(bufio.NewReaderSize(ef, 1<<20))
	rd.Directory = d
	eng := monitor.NewEngine(d, monitor.Options{Source: "monitoreval"})
	byKey := map[string]int{}
	var alerts []monitor.Alert
	collect := func(as []monitor.Alert) {
		for _, a := range as {
			if i, ok := byKey[a.Key]; ok && a.Key != "" {
				alerts[i] = a
				continue
			}
			byKey[a.Key] = len(alerts)
			alerts = append(alerts, a)
		}
	}
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, balp.ErrLine) {
			f.BadLines++
			continue
		}
		if err != nil {
			return f, err
		}
		eng.Add(ev)
		f.Events++
		if f.Events%100_000 == 0 {
			collect(eng.Alerts(false))
			if err := ctx.Err(); err != nil {
				return f, err
			}
		}
	}
	collect(eng.Alerts(true))
	f.Seconds = time.Since(start).Seconds()
	f.Lines = rd.Line()
	f.Alerts = len(alerts)
	f.List = alerts
	f.PeakRSSkB = vmHWM()
	f.CPU = cpuSeconds()
	return f, nil
}

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// vmHWM is the peak resident set size of this process in kB (Linux), or 0.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// speedRun generates a log of n events (a large hospital for as many
// days as it takes) to a file, then scores it in a child process.
func speedRun(ctx context.Context, out string, n int64, reuse bool) error {
	o, err := scenario.Size("large", 1)
	if err != nil {
		return err
	}
	// About 30 events per practitioner and day (measured on small).
	o.Days = min(scenario.MaxDays, int(n/int64(25*o.Practitioners))+3)
	o.MaxEvents = n
	dir := filepath.Join(out, fmt.Sprintf("speed-%d", n))
	t0 := time.Now()
	if err := generate(o, dir, reuse); err != nil {
		return err
	}
	gen := time.Since(t0)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-score", dir)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("scoring in a child process: %w", err)
	}
	var f figures
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("reading the child's figures: %w", err)
	}
	st, _ := os.Stat(filepath.Join(dir, "events.ndjson"))
	var size, csize int64
	if st != nil {
		size = st.Size()
	}
	if st, _ := os.Stat(filepath.Join(dir, "context.json")); st != nil {
		csize = st.Size()
	}
	stream, streamCPU := f.Seconds-f.Context, f.CPU-f.CtxCPU
	fmt.Printf("| AuditEvent lines | monitor events | log | context | generate | parse context (wall / CPU) | heap after context | peak RSS after context | stream+score (wall / CPU) | lines/s (wall) | lines per CPU-second | peak RSS | alerts | GOMAXPROCS |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %.0f MiB | %.0f MiB | %.0f s | %.1f s / %.1f s | %.0f MiB | %.0f MiB | %.1f s / %.1f s | %.0f | %.0f | %.0f MiB | %d | %d |\n",
		f.Lines, f.Events, float64(size)/(1<<20), float64(csize)/(1<<20), gen.Seconds(), f.Context, f.CtxCPU, f.ContextMB,
		float64(f.CtxHWMkB)/1024, stream, streamCPU, float64(f.Lines)/stream, float64(f.Lines)/streamCPU,
		float64(f.PeakRSSkB)/1024, f.Alerts, runtime.GOMAXPROCS(0))
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\nload average at the end: %s", l)
	}
	return nil
}
