package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/config"
)

const oidcSection = `"issuer":"https://idp.example","client_id":"phivault",` +
	`"redirect_url":"https://phivault.example/auth/oidc/callback","role_map":{"clinicians":"physician"}`

func TestLoadOIDC(t *testing.T) {
	tests := []struct {
		name       string
		section    string // "" = no oidc section
		env        env
		secretFile string // written as secret.txt with secretMode
		secretMode os.FileMode
		wantErr    string // substring naming the option; "" = valid
		wantOn     bool
		wantSecret string
	}{
		{"absent section is off", "", nil, "", 0, "", false, ""},
		{"disabled section is not validated", `{"enabled":false}`, nil, "", 0, "", false, ""},
		{"secret from the environment", `{"enabled":true,` + oidcSection + `}`,
			env{"PHIVAULT_OIDC_CLIENT_SECRET": "s3cret"}, "", 0, "", true, "s3cret"},
		{"secret from a 0600 file", `{"enabled":true,"client_secret_file":"secret.txt",` + oidcSection + `}`,
			nil, "filesecret\n", 0o600, "", true, "filesecret"},
		{"environment over file", `{"enabled":true,"client_secret_file":"secret.txt",` + oidcSection + `}`,
			env{"PHIVAULT_OIDC_CLIENT_SECRET": "envsecret"}, "filesecret", 0o600, "", true, "envsecret"},
		{"group-readable secret file", `{"enabled":true,"client_secret_file":"secret.txt",` + oidcSection + `}`,
			nil, "filesecret", 0o640, "oidc.client_secret_file", false, ""},
		{"secret in the file refused", `{"enabled":true,"client_secret":"x",` + oidcSection + `}`,
			env{"PHIVAULT_OIDC_CLIENT_SECRET": "s"}, "", 0, "client_secret", false, ""},
		// A missing secret, the role map and the issuer are checked by app.CheckConfig (config
		// is a leaf): internal/app/config_check_test.go.
		{"issuer from the environment", `{"enabled":true,"issuer":"http://bad",` + strings.TrimPrefix(oidcSection, `"issuer":"https://idp.example",`) + `}`,
			env{"PHIVAULT_OIDC_CLIENT_SECRET": "s", "PHIVAULT_OIDC_ISSUER": "https://idp.example"}, "", 0, "", true, "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			body := `{}`
			if tt.section != "" {
				body = `{"oidc":` + tt.section + `}`
			}
			writeConfig(t, dir, body)
			if tt.secretFile != "" {
				p := filepath.Join(dir, "secret.txt")
				if err := os.WriteFile(p, []byte(tt.secretFile), tt.secretMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tt.secretMode); err != nil {
					t.Fatal(err)
				}
			}
			c, err := config.Load(dir, tt.env.get, config.Overrides{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: %v, want an error naming %s", err, tt.wantErr)
				}
				if !errors.Is(err, config.ErrInvalid) && !strings.Contains(err.Error(), "unknown field") {
					t.Fatalf("Load: %v does not wrap ErrInvalid", err)
				}
				if tt.secretFile != "" && strings.Contains(err.Error(), tt.secretFile) {
					t.Fatal("the secret reached the error text")
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.OIDC.On() != tt.wantOn {
				t.Fatalf("OIDC on = %v, want %v", c.OIDC.On(), tt.wantOn)
			}
			if !tt.wantOn {
				return
			}
			if c.OIDC.ClientSecret() != tt.wantSecret || c.OIDC.Issuer != "https://idp.example" {
				t.Fatalf("secret %q issuer %q, want %q and https://idp.example", c.OIDC.ClientSecret(), c.OIDC.Issuer, tt.wantSecret)
			}
			if !c.OIDC.Provision() {
				t.Fatal("auto-provisioning is off by default")
			}
		})
	}
}
