package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// loadResult is one mode's result as bench/load -json prints it (its
// type result in bench/load/workload.go; keep the two in step).
type loadResult struct {
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

// rate is the figure the table compares: resources/s for writes,
// requests/s otherwise.
func (r *loadResult) rate(m modeSpec) float64 {
	if m.resources {
		return r.ResPerSec
	}
	return r.ReqPerSec
}

// loadRun is one measurement: a mode on a server in a round.
type loadRun struct {
	Server    string      `json:"server"` // "baseline" or "phivault"
	Store     string      `json:"store"`  // "sqlite" or "postgres"
	Round     int         `json:"round"`
	Mode      string      `json:"mode"`
	SettledMs int64       `json:"settled_after_ms"` // how long the servers took to go quiet before it
	Result    *loadResult `json:"result"`
}

// measure waits for every server in quiet (srv among them) to settle,
// then runs bench/load once in mode against srv: a server still busy
// with its previous writes would slow the one measured, as both share
// the cores. The token travels in the environment (LOAD_TOKEN), never in
// argv.
func (s *suite) measure(ctx context.Context, srv *server, quiet []*server, serverKind, store string, round int, mode string) (*loadRun, error) {
	var waited time.Duration
	for _, q := range quiet {
		w, err := q.settle(ctx, s.opt.settle)
		if err != nil {
			return nil, err
		}
		if s.opt.settle > 0 && w >= s.opt.settle {
			s.progress.printf("warning: %s still busy after %s (-settle); measuring anyway", q.name, s.opt.settle)
		}
		waited += w
	}
	s.progress.printf("round %d/%d: %s on %s (%s)", round, s.opt.rounds, mode, srv.name, s.opt.span())
	args := []string{
		"-url", srv.url, "-cacert", srv.cacert, "-clients", strconv.Itoa(s.opt.clients),
		"-duration", s.opt.duration.String(), "-mode", mode, "-pid", strconv.Itoa(srv.pid()),
		"-ids", strconv.Itoa(s.opt.ids), "-bundles", strconv.Itoa(s.opt.bundles), "-requests", strconv.Itoa(s.opt.requests),
		// Both servers of a round get the same choices and the same new
		// patients; each round gets new ones, so that a transaction
		// round does not post the previous round's patients again.
		"-seed", strconv.Itoa(1000 + round), "-json",
	}
	cmd := exec.CommandContext(ctx, s.bins.load, args...)
	cmd.Env = childEnv("LOAD_TOKEN=" + srv.token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if aerr := srv.alive(); aerr != nil {
			return nil, aerr
		}
		return nil, fmt.Errorf("bench/load -mode %s on %s: %w: %s", mode, srv.name, err, tail(stderr.String()))
	}
	var results []*loadResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil || len(results) != 1 {
		return nil, fmt.Errorf("bench/load -mode %s on %s: unreadable -json output (%v)", mode, srv.name, err)
	}
	r := results[0]
	s.progress.printf("  %s: %.0f req/s%s, p50/p95/p99 %.1f/%.1f/%.1f ms, %d errors, peak RSS %.0f MiB",
		srv.name, r.ReqPerSec, resSuffix(r), r.P50ms, r.P95ms, r.P99ms, r.Errors, r.PeakRSSMiB)
	return &loadRun{Server: serverKind, Store: store, Round: round, Mode: mode, SettledMs: waited.Milliseconds(), Result: r}, nil
}

func resSuffix(r *loadResult) string {
	if r.ResPerSec == 0 {
		return ""
	}
	return fmt.Sprintf(" (%.0f resources/s)", r.ResPerSec)
}

// rounds runs every mode for every round on phivault, and on the baseline
// too (when base is not nil and it answers the mode), alternating which
// of the two goes first from one round to the next so that neither always
// follows the other's writes or background work.
func (s *suite) rounds(ctx context.Context, pv *server, store string, base *server, modes []modeSpec) ([]*loadRun, error) {
	var runs []*loadRun
	quiet := []*server{pv}
	if base != nil {
		quiet = append(quiet, base)
	}
	for round := 1; round <= s.opt.rounds; round++ {
		for _, m := range modes {
			type target struct {
				srv  *server
				kind string
			}
			order := []target{{pv, "phivault"}}
			if base != nil && m.baseline {
				if round%2 == 1 {
					order = []target{{base, "baseline"}, {pv, "phivault"}}
				} else {
					order = []target{{pv, "phivault"}, {base, "baseline"}}
				}
			}
			for _, t := range order {
				run, err := s.measure(ctx, t.srv, quiet, t.kind, store, round, m.name)
				if err != nil {
					return runs, err
				}
				runs = append(runs, run)
			}
		}
	}
	return runs, nil
}
