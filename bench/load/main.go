// Command load drives a FHIR server (phivault or bench/baseline) with
// keep-alive clients and reports throughput, latency percentiles and the
// server's peak resident memory. See bench/README.md.
//
// It only ever talks to the one -url given, and refuses hosts that are not
// loopback unless -allow-remote is set: it is a benchmark, not a stress tool
// to point at other people's servers.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type config struct {
	base        string
	token       string
	clients     int
	duration    time.Duration
	maxRequests int
	modes       []string
	pid         int
	maxIDs      int
	bundles     int
	seed        int64
	jsonOut     bool
	client      *http.Client
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	rawURL := fs.String("url", "https://127.0.0.1:8443/fhir", "FHIR base URL")
	token := fs.String("token", "", "bearer token sent as Authorization (read from env LOAD_TOKEN when empty)")
	insecure := fs.Bool("insecure", false, "skip TLS certificate verification (local CA)")
	cacert := fs.String("cacert", "", "PEM file of the CA to trust")
	clients := fs.Int("clients", 64, "concurrent keep-alive clients")
	duration := fs.Duration("duration", 30*time.Second, "measured time per mode")
	maxReq := fs.Int("requests", 0, "stop a mode after this many requests (0: no limit)")
	mode := fs.String("mode", "read", "read|search|include|chain|sort|create|transaction|all (all: read, search, create, transaction)")
	pid := fs.Int("pid", 0, "server PID, to sample peak RSS from /proc/PID/status")
	maxIDs := fs.Int("ids", 20000, "ids to discover per type before measuring")
	bundles := fs.Int("bundles", 1000, "distinct synthetic patient bundles prepared for -mode transaction")
	seed := fs.Int64("seed", time.Now().UnixNano(), "seed for random choices and synthetic patients")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback host")
	jsonOut := fs.Bool("json", false, "print results as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(strings.TrimRight(*rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q is not an http(s) URL", *rawURL)
	}
	if !*allowRemote && !isLoopback(u.Hostname()) {
		return fmt.Errorf("-url host %q is not loopback; pass -allow-remote to benchmark it", u.Hostname())
	}
	if *clients < 1 || *duration <= 0 {
		return errors.New("-clients must be ≥ 1 and -duration > 0")
	}
	cfg := &config{
		base: u.String(), token: *token, clients: *clients, duration: *duration, maxRequests: *maxReq,
		pid: *pid, maxIDs: *maxIDs, bundles: *bundles, seed: *seed, jsonOut: *jsonOut,
	}
	if cfg.token == "" {
		cfg.token = os.Getenv("LOAD_TOKEN")
	}
	switch *mode {
	case "read", "search", "include", "chain", "sort", "create", "transaction":
		cfg.modes = []string{*mode}
	case "all":
		cfg.modes = []string{"read", "search", "create", "transaction"}
	default:
		return fmt.Errorf("-mode %q: want read, search, include, chain, sort, create, transaction or all", *mode)
	}

	tlsCfg := &tls.Config{InsecureSkipVerify: *insecure}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			return fmt.Errorf("reading -cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-cacert %s holds no PEM certificate", *cacert)
		}
		tlsCfg.RootCAs = pool
	}
	cfg.client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			MaxIdleConns:        *clients,
			MaxIdleConnsPerHost: *clients,
			MaxConnsPerHost:     *clients,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	patients, err := cfg.discover(ctx, "Patient")
	if err != nil {
		return err
	}
	observations, err := cfg.discover(ctx, "Observation")
	if err != nil {
		return err
	}
	if len(patients) == 0 {
		return errors.New("the server holds no Patient: load data first")
	}

	var results []*result
	for _, m := range cfg.modes {
		var w workload
		switch m {
		case "read":
			w = readLoad(cfg.base, patients, observations)
		case "search":
			w = searchLoad(cfg.base, patients)
		case "include":
			w = includeLoad(cfg.base, patients)
		case "chain":
			w = chainLoad(cfg.base, patients)
		case "sort":
			w = sortLoad(cfg.base, patients)
		case "create":
			w = createLoad(cfg.base, patients)
		case "transaction":
			if w, err = cfg.transactionLoad(ctx); err != nil {
				return err
			}
		}
		res, err := cfg.measure(ctx, m, w)
		if err != nil {
			return err
		}
		results = append(results, res)
		if !cfg.jsonOut {
			res.print(out)
		}
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do sends one request and drains the body; it returns the status.
func (c *config) do(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, b, err
}

// discover pages through GET {base}/{typ}?_count=1000 following
// link[relation=next] until maxIDs ids are known. It is not measured.
func (c *config) discover(ctx context.Context, typ string) ([]string, error) {
	next := c.base + "/" + typ + "?_count=1000"
	var ids []string
	for next != "" && len(ids) < c.maxIDs {
		status, body, err := c.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, fmt.Errorf("discovering %s ids: %w", typ, err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("discovering %s ids: GET %s: status %d", typ, next, status)
		}
		var b struct {
			Link  []struct{ Relation, URL string }
			Entry []struct {
				Resource struct{ ID string } `json:"resource"`
			}
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, fmt.Errorf("discovering %s ids: %w", typ, err)
		}
		for _, e := range b.Entry {
			if e.Resource.ID != "" {
				ids = append(ids, e.Resource.ID)
			}
		}
		prev := next
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				ref, err := url.Parse(prev)
				if err != nil {
					return nil, err
				}
				nu, err := ref.Parse(l.URL)
				if err != nil {
					return nil, err
				}
				next = nu.String()
			}
		}
		if len(b.Entry) == 0 {
			break
		}
	}
	return ids[:min(len(ids), c.maxIDs)], nil
}
