package app_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

// CheckConfig refuses what only the domains can judge, wrapping
// config.ErrInvalid and naming the option; config.Load (a leaf) accepts
// these files' shape.
func TestCheckConfig(t *testing.T) {
	const rp = `"client_id":"c","redirect_url":"https://p.example/cb"`
	secret := map[string]string{"PHIVAULT_OIDC_CLIENT_SECRET": "s"}
	tests := []struct {
		name    string
		body    string
		wantErr string // "" = valid
	}{
		{"valid oidc", `{"oidc":{"enabled":true,"issuer":"https://idp.example",` + rp + `,"role_map":{"g":"nurse"}}}`, ""},
		{"unknown role", `{"oidc":{"enabled":true,"issuer":"https://idp.example",` + rp + `,"role_map":{"g":"wizard"}}}`, "oidc.role_map"},
		{"patient not provisioned by sso", `{"oidc":{"enabled":true,"issuer":"https://idp.example",` + rp + `,"role_map":{"g":"patient"}}}`, "oidc.role_map"},
		{"http issuer", `{"oidc":{"enabled":true,"issuer":"http://idp.example",` + rp + `,"role_map":{"g":"nurse"}}}`, "oidc.issuer"},
		{"disabled oidc is not judged", `{"oidc":{"enabled":false,"issuer":"http://idp.example","role_map":{"g":"wizard"}}}`, ""},
		{"unknown redaction", `{"export":[{"name":"siem","type":"jsonl","path":"audit.jsonl","redact":["agent.shoe_size"]}]}`, "export[0].redact"},
		{"known redaction", `{"export":[{"name":"siem","type":"jsonl","path":"audit.jsonl","redact":["agent.address"]}]}`, ""},
		{"no secret", `{"oidc":{"enabled":true,"issuer":"https://idp.example",` + rp + `,"role_map":{"g":"nurse"}}}`, "PHIVAULT_OIDC_CLIENT_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return secret[k] }
			if tt.name == "no secret" {
				getenv = func(string) string { return "" }
			}
			c, err := config.Load(dir, getenv, config.Overrides{KeyFile: "kek.json"})
			if err != nil {
				t.Fatalf("Load: %v (config judges only the shape)", err)
			}
			err = app.CheckConfig(c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckConfig: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("CheckConfig: %v, want an error wrapping ErrInvalid naming %s", err, tt.wantErr)
			}
		})
	}
}
