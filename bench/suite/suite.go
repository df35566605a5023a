package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// suite is one run of the whole table.
type suite struct {
	opt      options
	progress *progress
	bins     binaries
	synthDir string
}

// report is what the JSON results file holds.
type report struct {
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Machine  machine         `json:"machine"`
	Options  reportOptions   `json:"options"`
	Imports  []*importResult `json:"imports"`
	Runs     []*loadRun      `json:"runs"`
	Rows     []row           `json:"rows"`
	// Error is why a run stopped early; what it measured until then is
	// kept (no rows).
	Error string `json:"error,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"` // of the suite
	Commit    string `json:"commit,omitempty"`
	LoadAvg   string `json:"loadavg_at_start,omitempty"`
}

type reportOptions struct {
	Patients int    `json:"patients"`
	Seed     int64  `json:"seed"`
	Duration string `json:"duration"`
	Rounds   int    `json:"rounds"`
	Clients  int    `json:"clients"`
	Requests int    `json:"requests_per_mode,omitempty"`
	Postgres bool   `json:"postgres"`
	// PostgresDatabase is the database the suite created (and dropped
	// unless -keep).
	PostgresDatabase string   `json:"postgres_database,omitempty"`
	PGModes          []string `json:"pg_modes,omitempty"`
}

// run runs the suite: the markdown table goes to stdout, progress to
// stderr, the raw figures to opt.out.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	opt, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	s := &suite{opt: opt, progress: &progress{w: stderr, start: time.Now()}}
	rep := &report{
		Started: time.Now().UTC(),
		Machine: machine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(), LoadAvg: loadAvg()},
		Options: reportOptions{Patients: opt.patients, Seed: opt.seed, Duration: opt.duration.String(), Rounds: opt.rounds,
			Clients: opt.clients, Requests: opt.requests, Postgres: opt.postgres != "", PGModes: opt.pgModes},
	}
	if err := os.MkdirAll(filepath.Join(opt.work, "logs"), 0o700); err != nil {
		return err
	}
	// A run that fails after measuring something (half an hour at full
	// size) still leaves what it measured.
	defer func() {
		if err != nil && len(rep.Imports) > 0 {
			rep.Error, rep.Finished = err.Error(), time.Now().UTC()
			if werr := writeReport(opt.out, rep); werr == nil {
				s.progress.printf("partial results written to %s", opt.out)
			}
		}
	}()
	if s.bins, err = s.build(ctx); err != nil {
		return err
	}
	rep.Machine.Commit = s.bins.commit
	if s.synthDir, err = s.synth(ctx); err != nil {
		return err
	}

	// Imports, one at a time, each alone on the machine.
	s.progress.printf("phivault init and import (SQLite)")
	sq, err := s.initVault(ctx, "sqlite", "")
	if err != nil {
		return err
	}
	defer s.cleanup(sq.dir)
	im, err := s.importPhivault(ctx, "sqlite", sq.dir, sq.env)
	if err != nil {
		return err
	}
	s.progress.printf("imported %d resources in %.1f s (%.0f resources/s, %.1f cores), peak RSS %.0f MiB", im.Resources, im.Seconds, im.ResPerSec, im.CPUCores, im.PeakRSSMiB)
	rep.Imports = append(rep.Imports, im)

	var pg *vault
	if opt.postgres != "" {
		var db *pgDatabase
		if db, err = createDatabase(ctx, opt.postgres); err != nil {
			return err
		}
		defer func() {
			if opt.keep {
				s.progress.printf("kept PostgreSQL database %s", db.name)
				return
			}
			if derr := db.drop(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, derr)
			}
		}()
		rep.Options.PostgresDatabase = db.name
		s.progress.printf("phivault init and import (PostgreSQL, database %s)", db.name)
		if pg, err = s.initVault(ctx, "postgres", db.url); err != nil {
			return err
		}
		defer s.cleanup(pg.dir)
		pim, err := s.importPhivault(ctx, "postgres", pg.dir, pg.env)
		if err != nil {
			return err
		}
		s.progress.printf("imported %d resources in %.1f s (%.0f resources/s, %.1f cores), peak RSS %.0f MiB", pim.Resources, pim.Seconds, pim.ResPerSec, pim.CPUCores, pim.PeakRSSMiB)
		rep.Imports = append(rep.Imports, pim)
	}

	s.progress.printf("loading the baseline")
	bdb := filepath.Join(opt.work, "baseline.db")
	defer s.cleanup(bdb, bdb+"-wal", bdb+"-shm")
	bim, err := s.loadBaseline(ctx, bdb, filepath.Join(opt.work, "logs", "baseline-load.log"))
	if err != nil {
		return err
	}
	s.progress.printf("baseline loaded %d resources in %.1f s (%.0f resources/s)", bim.Resources, bim.Seconds, bim.ResPerSec)
	rep.Imports = append(rep.Imports, bim)

	// Load: baseline and phivault (SQLite) side by side.
	runs, err := s.loadSQLite(ctx, sq, bdb)
	rep.Runs = append(rep.Runs, runs...)
	if err != nil {
		return err
	}
	if pg != nil && len(opt.pgModes) > 0 {
		runs, err := s.loadPostgres(ctx, pg)
		rep.Runs = append(rep.Runs, runs...)
		if err != nil {
			return err
		}
	}

	rep.Rows = buildRows(rep.Runs, rep.Imports, opt.patients, pgModesIf(pg != nil, opt.pgModes))
	rep.Finished = time.Now().UTC()
	fmt.Fprintf(stdout, "%d synthetic patients (seed %d, %d resources), %d clients, %s per mode and server, %d round(s), "+
		"%d CPUs, %s, commit %s, load average at start %s\n\n",
		opt.patients, opt.seed, im.Resources, opt.clients, opt.span(), opt.rounds, rep.Machine.CPUs, rep.Machine.GoVersion,
		orNone(rep.Machine.Commit), orNone(rep.Machine.LoadAvg))
	writeTable(stdout, rep.Rows)
	if err := writeReport(opt.out, rep); err != nil {
		return err
	}
	s.progress.printf("results written to %s", opt.out)
	return nil
}

func writeReport(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadSQLite serves the baseline and phivault on SQLite at once and runs
// every mode on both, interleaved.
func (s *suite) loadSQLite(ctx context.Context, sq *vault, bdb string) (runs []*loadRun, err error) {
	s.progress.printf("starting the baseline and phivault (SQLite)")
	base, err := s.serveBaseline(ctx, bdb, sq)
	if err != nil {
		return nil, err
	}
	defer base.stop()
	pv, err := s.serveVault(ctx, sq)
	if err != nil {
		return nil, err
	}
	defer pv.stop()
	return s.rounds(ctx, pv, "sqlite", base, suiteModes())
}

// loadPostgres serves phivault on PostgreSQL alone and runs -pg-modes.
func (s *suite) loadPostgres(ctx context.Context, pg *vault) ([]*loadRun, error) {
	s.progress.printf("starting phivault (PostgreSQL)")
	pv, err := s.serveVault(ctx, pg)
	if err != nil {
		return nil, err
	}
	defer pv.stop()
	var modes []modeSpec
	for _, m := range suiteModes() {
		if slices.Contains(s.opt.pgModes, m.name) {
			modes = append(modes, m)
		}
	}
	return s.rounds(ctx, pv, "postgres", nil, modes)
}

// cleanup removes paths unless -keep.
func (s *suite) cleanup(paths ...string) {
	if s.opt.keep {
		s.progress.printf("kept %s", strings.Join(paths, ", "))
		return
	}
	for _, p := range paths {
		_ = os.RemoveAll(p)
	}
}

func pgModesIf(ok bool, modes []string) []string {
	if !ok {
		return nil
	}
	return modes
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// loadAvg is the first three fields of /proc/loadavg, "" where there is
// none: a busy machine is the first thing to rule out when figures drop.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
