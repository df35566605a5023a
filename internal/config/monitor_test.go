package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/config"
)

func TestMonitorDefaults(t *testing.T) {
	c := config.Default(t.TempDir())
	if !c.Monitor.OwnLogOn() || c.Monitor.IntervalOrDefault() != config.DefaultMonitorInterval || c.Monitor.SMTP != nil {
		t.Errorf("default monitor: on=%v interval=%v smtp=%v", c.Monitor.OwnLogOn(), c.Monitor.IntervalOrDefault(), c.Monitor.SMTP)
	}
}

func TestMonitorValidate(t *testing.T) {
	smtp := func() *config.SMTP {
		return &config.SMTP{Address: "mail.example.org:587", From: "phivault@example.org", To: []string{"privacy@example.org"}}
	}
	bad := []struct {
		name, option string
		m            config.Monitor
	}{
		{"interval too long", "monitor.interval", config.Monitor{Interval: config.Duration(time.Minute)}},
		{"interval too short", "monitor.interval", config.Monitor{Interval: config.Duration(time.Millisecond)}},
		{"no address", "monitor.smtp.address", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.Address = "mail.example.org"; return s }()}},
		{"no from", "monitor.smtp.from", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.From = ""; return s }()}},
		{"no recipient", "monitor.smtp.to", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.To = nil; return s }()}},
		{"bad recipient", "monitor.smtp.to", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.To = []string{"not an address"}; return s }()}},
		{"plaintext to a remote host", "monitor.smtp.allow_plaintext", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.AllowPlaintext = true; return s }()}},
		{"user without password", "monitor.smtp.username", config.Monitor{SMTP: func() *config.SMTP { s := smtp(); s.Username = "u"; return s }()}},
		{"no base url for the link", "monitor.smtp", config.Monitor{SMTP: smtp()}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(t.TempDir())
			if tt.name != "no base url for the link" {
				c.Server.BaseURL = "https://phivault.example.org"
			}
			c.Monitor = tt.m
			err := c.Validate()
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.option) {
				t.Fatalf("Validate: %v, want ErrInvalid naming %s", err, tt.option)
			}
		})
	}
	c := config.Default(t.TempDir())
	c.Server.BaseURL = "https://phivault.example.org"
	c.Monitor = config.Monitor{Interval: config.Duration(30 * time.Second), SMTP: smtp()}
	c.Monitor.SMTP.Address, c.Monitor.SMTP.AllowPlaintext = "127.0.0.1:2525", true
	if err := c.Validate(); err != nil {
		t.Fatalf("plaintext to loopback: %v", err)
	}
}

func TestLoadMonitor(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smtp.pass"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, `{"server": {"base_url": "https://phivault.example.org"}, "monitor": {"own_log": false, "interval": "20s", "smtp": {"address": "localhost:2525", "from": "pv@example.org",
		"to": ["po@example.org"], "allow_plaintext": true, "username": "pv", "password_file": "smtp.pass"}}}`)
	c, err := config.Load(dir, env{}.get, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Monitor.OwnLogOn() || c.Monitor.IntervalOrDefault() != 20*time.Second || c.Monitor.SMTP.Password() != "s3cret" {
		t.Errorf("loaded %+v (password read: %v)", c.Monitor, c.Monitor.SMTP.Password() == "s3cret")
	}
	if err := os.Chmod(filepath.Join(dir, "smtp.pass"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(dir, env{}.get, config.Overrides{}); err == nil || !strings.Contains(err.Error(), "monitor.smtp.password_file") {
		t.Errorf("a world-readable password file: %v", err)
	}
}
