package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/config"
)

const goodToken = "0123456789abcdef0123456789abcdef"

func TestObservabilityValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(o *config.Observability)
		option string // "" : valid
	}{
		{"off by default", func(o *config.Observability) {}, ""},
		{"metrics on loopback without token", func(o *config.Observability) { o.MetricsListen = "127.0.0.1:9464" }, ""},
		{"metrics on localhost", func(o *config.Observability) { o.MetricsListen = "localhost:9464" }, ""},
		{"metrics on all interfaces without token", func(o *config.Observability) { o.MetricsListen = ":9464" }, "observability.metrics_listen"},
		{"metrics on a LAN address without token", func(o *config.Observability) { o.MetricsListen = "10.0.0.5:9464" }, "observability.metrics_listen"},
		{"metrics on a LAN address with token", func(o *config.Observability) {
			o.MetricsListen = "10.0.0.5:9464"
			o.SetMetricsToken(goodToken)
		}, ""},
		{"metrics listen without port", func(o *config.Observability) { o.MetricsListen = "127.0.0.1" }, "observability.metrics_listen"},
		{"short token", func(o *config.Observability) { o.SetMetricsToken("short") }, "observability.metrics_token_file"},
		{"pprof on loopback", func(o *config.Observability) { o.PprofListen = "127.0.0.1:6060" }, ""},
		{"pprof on all interfaces", func(o *config.Observability) { o.PprofListen = "0.0.0.0:6060" }, "observability.pprof_listen"},
		{"pprof remote allowed", func(o *config.Observability) { o.PprofListen = "0.0.0.0:6060"; o.PprofAllowRemote = true }, ""},
		{"otlp endpoint", func(o *config.Observability) { o.Tracing.OTLPEndpoint = "http://127.0.0.1:4318/v1/traces" }, ""},
		{"otlp endpoint with credentials", func(o *config.Observability) { o.Tracing.OTLPEndpoint = "https://u:p@otel/v1/traces" }, "observability.tracing.otlp_endpoint"},
		{"otlp endpoint without scheme", func(o *config.Observability) { o.Tracing.OTLPEndpoint = "otel:4318" }, "observability.tracing.otlp_endpoint"},
		{"sample ratio above 1", func(o *config.Observability) { o.Tracing.SampleRatio = 1.5 }, "observability.tracing.sample_ratio"},
		{"negative sample ratio", func(o *config.Observability) { o.Tracing.SampleRatio = -0.1 }, "observability.tracing.sample_ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(t.TempDir())
			tt.mutate(&c.Observability)
			err := c.Validate()
			switch {
			case tt.option == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.option != "" && !errors.Is(err, config.ErrInvalid):
				t.Fatalf("Validate: %v, want ErrInvalid", err)
			case tt.option != "" && !strings.Contains(err.Error(), tt.option):
				t.Errorf("error %q does not name %q", err, tt.option)
			}
		})
	}
}

// The metrics token comes from the environment or a 0600 file, never
// from the configuration file itself, and is never written back.
func TestMetricsToken(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "metrics.token")
	if err := os.WriteFile(tokFile, []byte(goodToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, `{"observability":{"metrics_token_file":"metrics.token","metrics_listen":"0.0.0.0:9464"}}`)
	c, err := config.Load(dir, env{}.get, config.Overrides{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Observability.MetricsToken() != goodToken {
		t.Errorf("token from file = %q", c.Observability.MetricsToken())
	}
	c2, err := config.Load(dir, env{config.MetricsTokenEnv: strings.Repeat("e", 40)}.get, config.Overrides{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c2.Observability.MetricsToken() != strings.Repeat("e", 40) {
		t.Error("the environment does not take precedence over the file")
	}
	c.DataDir = t.TempDir()
	if err := config.Write(c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), goodToken) {
		t.Error("the configuration file holds the metrics token")
	}
	if err := os.Chmod(tokFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(dir, env{}.get, config.Overrides{}); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "metrics_token_file") {
		t.Errorf("a world-readable token file: %v", err)
	}
}

// TestTraceSampleRatioEnv (penetration test): NaN traced everything, and
// an explicit 0 passed though the documented range is (0, 1].
func TestTraceSampleRatioEnv(t *testing.T) {
	for v, ok := range map[string]bool{"0.05": true, "1": true, "NaN": false, "0": false, "-0": false, "2": false, "Inf": false, "abc": false} {
		c := config.Default(t.TempDir())
		_, err := c.WithEnv(func(k string) string {
			if k == "PHIVAULT_TRACE_SAMPLE_RATIO" {
				return v
			}
			return ""
		})
		if (err == nil) != ok {
			t.Errorf("PHIVAULT_TRACE_SAMPLE_RATIO=%s: %v, want accepted %v", v, err, ok)
		}
	}
}
