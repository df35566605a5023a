package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Observability configures metrics, profiling and tracing
// (docs/observability.md, ADR 0040). The zero value is the default:
// no /metrics, no pprof, no tracing.
type Observability struct {
	// MetricsListen is a listener of its own for /metrics, plain HTTP,
	// e.g. "127.0.0.1:9464". Empty: none. A non-loopback address needs
	// the metrics token. Env: PHIVAULT_METRICS_LISTEN.
	MetricsListen string `json:"metrics_listen,omitempty"`
	// MetricsTokenFile holds the bearer token /metrics requires (mode
	// 0600, at least MinMetricsToken bytes). With a token, /metrics is
	// also served on the main listener; without one, it answers 404
	// there. Env PHIVAULT_METRICS_TOKEN takes precedence.
	MetricsTokenFile string `json:"metrics_token_file,omitempty"`
	metricsToken     string

	// PprofListen is the admin-only pprof listener, plain HTTP, e.g.
	// "127.0.0.1:6060"; every request needs an admin API token. Empty
	// (the default): no profiling. Env: PHIVAULT_PPROF_LISTEN.
	PprofListen string `json:"pprof_listen,omitempty"`
	// PprofAllowRemote allows a non-loopback PprofListen (a trusted
	// network only: the token crosses it in clear).
	PprofAllowRemote bool `json:"pprof_allow_remote,omitempty"`

	// Tracing sends OpenTelemetry traces of the request path; off
	// without an endpoint.
	Tracing Tracing `json:"tracing,omitzero"`
}

// Tracing configures the OpenTelemetry traces.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP traces URL, e.g.
	// http://127.0.0.1:4318/v1/traces. Empty (the default): tracing off.
	// Env: PHIVAULT_OTLP_ENDPOINT.
	OTLPEndpoint string `json:"otlp_endpoint,omitempty"`
	// SampleRatio is the share of requests traced, in (0, 1]; 0 means
	// DefaultSampleRatio. Env: PHIVAULT_TRACE_SAMPLE_RATIO.
	SampleRatio float64 `json:"sample_ratio,omitempty"`
}

const (
	// MinMetricsToken is the shortest metrics token accepted: 32 bytes
	// (e.g. "openssl rand -hex 16") cannot be guessed online.
	MinMetricsToken = 32
	// DefaultSampleRatio traces one request in a hundred: at the 12,000
	// reads a second phivault aims for, 120 traces a second is enough
	// to see every route's shape without loading the collector.
	DefaultSampleRatio = 0.01
	// MetricsTokenEnv names the variable holding the metrics token.
	MetricsTokenEnv = "PHIVAULT_METRICS_TOKEN"
)

// MetricsToken returns the metrics bearer token, from MetricsTokenEnv
// or MetricsTokenFile, or "".
func (o Observability) MetricsToken() string { return o.metricsToken }

// SetMetricsToken sets the metrics token, for a Config built without
// Load (tests, embedding).
func (o *Observability) SetMetricsToken(tok string) { o.metricsToken = tok }

// SampleRatioOrDefault is SampleRatio, or DefaultSampleRatio when 0.
func (t Tracing) SampleRatioOrDefault() float64 {
	if t.SampleRatio == 0 {
		return DefaultSampleRatio
	}
	return t.SampleRatio
}

func (o *Observability) applyEnv(getenv func(string) string) error {
	for name, p := range map[string]*string{
		"PHIVAULT_METRICS_LISTEN": &o.MetricsListen,
		"PHIVAULT_PPROF_LISTEN":   &o.PprofListen,
		"PHIVAULT_OTLP_ENDPOINT":  &o.Tracing.OTLPEndpoint,
	} {
		if v := getenv(name); v != "" {
			*p = v
		}
	}
	o.metricsToken = strings.TrimSpace(getenv(MetricsTokenEnv))
	if v := getenv("PHIVAULT_TRACE_SAMPLE_RATIO"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || r <= 0 || r > 1 {
			return fmt.Errorf("%w: PHIVAULT_TRACE_SAMPLE_RATIO must be a number above 0 and at most 1", ErrInvalid)
		}
		o.Tracing.SampleRatio = r
	}
	return nil
}

// readToken fills the metrics token from MetricsTokenFile when the
// environment did not.
func (o *Observability) readToken() error {
	if o.metricsToken != "" || o.MetricsTokenFile == "" {
		return nil
	}
	v, err := readSecretFile("observability.metrics_token_file", o.MetricsTokenFile)
	if err != nil {
		return err
	}
	o.metricsToken = v
	return nil
}

// IsLoopback reports whether the host of a host:port address is a
// loopback address or "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (o Observability) validate() error {
	bad := func(opt, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, opt, why) }
	if o.metricsToken != "" && len(o.metricsToken) < MinMetricsToken {
		return bad("observability.metrics_token_file ("+MetricsTokenEnv+")", fmt.Sprintf("the token must be at least %d bytes", MinMetricsToken))
	}
	if o.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(o.MetricsListen); err != nil {
			return bad("observability.metrics_listen (PHIVAULT_METRICS_LISTEN)", "must be host:port")
		}
		if !IsLoopback(o.MetricsListen) && o.metricsToken == "" {
			return bad("observability.metrics_listen (PHIVAULT_METRICS_LISTEN)", "a non-loopback address needs the metrics token ("+MetricsTokenEnv+" or observability.metrics_token_file)")
		}
	}
	if o.PprofListen != "" {
		if _, _, err := net.SplitHostPort(o.PprofListen); err != nil {
			return bad("observability.pprof_listen (PHIVAULT_PPROF_LISTEN)", "must be host:port")
		}
		if !IsLoopback(o.PprofListen) && !o.PprofAllowRemote {
			return bad("observability.pprof_listen (PHIVAULT_PPROF_LISTEN)", "loopback only, unless observability.pprof_allow_remote is set")
		}
	}
	if e := o.Tracing.OTLPEndpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return bad("observability.tracing.otlp_endpoint (PHIVAULT_OTLP_ENDPOINT)", "must be an http(s) URL without credentials or query, e.g. http://127.0.0.1:4318/v1/traces")
		}
	}
	if r := o.Tracing.SampleRatio; math.IsNaN(r) || r < 0 || r > 1 {
		return bad("observability.tracing.sample_ratio (PHIVAULT_TRACE_SAMPLE_RATIO)", "must be between 0 and 1")
	}
	return nil
}

func (o *Observability) resolvePaths(c Config) {
	o.MetricsTokenFile = c.Path(o.MetricsTokenFile)
}
