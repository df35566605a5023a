package oidc_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/identity"
)

func validConfig() oidc.Config {
	return oidc.Config{
		Issuer:       "https://idp.hospital.example/realms/staff",
		ClientID:     "phivault",
		ClientSecret: "s3cret-from-env",
		RedirectURL:  "https://phivault.hospital.example/sso/callback",
		RoleMap:      map[string]identity.Role{"clinicians": identity.RolePhysician},
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *oidc.Config)
		option string // "" means valid
	}{
		{"valid", func(*oidc.Config) {}, ""},
		{"loopback http redirect", func(c *oidc.Config) { c.RedirectURL = "http://127.0.0.1:8443/sso/callback" }, ""},
		{"no issuer", func(c *oidc.Config) { c.Issuer = "" }, "oidc.issuer"},
		{"http issuer", func(c *oidc.Config) { c.Issuer = "http://idp.hospital.example" }, "oidc.issuer"},
		{"issuer with query", func(c *oidc.Config) { c.Issuer += "?x=1" }, "oidc.issuer"},
		{"no client id", func(c *oidc.Config) { c.ClientID = "" }, "oidc.client_id"},
		{"no client secret", func(c *oidc.Config) { c.ClientSecret = "" }, "PHIVAULT_OIDC_CLIENT_SECRET"},
		{"http redirect off loopback", func(c *oidc.Config) { c.RedirectURL = "http://phivault.example/cb" }, "oidc.redirect_url"},
		{"relative redirect", func(c *oidc.Config) { c.RedirectURL = "/sso/callback" }, "oidc.redirect_url"},
		{"scopes without openid", func(c *oidc.Config) { c.Scopes = []string{"email"} }, "oidc.scopes"},
		{"no role map", func(c *oidc.Config) { c.RoleMap = nil }, "oidc.role_map"},
		{"unknown role", func(c *oidc.Config) { c.RoleMap["x"] = "superuser" }, "oidc.role_map"},
		{"system role", func(c *oidc.Config) { c.RoleMap["bots"] = identity.RoleSystem }, "oidc.role_map"},
		{"empty group", func(c *oidc.Config) { c.RoleMap[""] = identity.RoleNurse }, "oidc.role_map"},
		{"empty amr value", func(c *oidc.Config) { c.MFAValues = []string{"otp", ""} }, "oidc.mfa_values"},
		{"empty acr value", func(c *oidc.Config) { c.ACRValues = []string{""} }, "oidc.acr_values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.option == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, oidc.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.option) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig naming %s", err, tt.option)
			}
			if strings.Contains(err.Error(), c.ClientSecret) && c.ClientSecret != "" {
				t.Errorf("error %q quotes the client secret", err)
			}
		})
	}
}

func TestConfigLogValueRedactsSecret(t *testing.T) {
	t.Parallel()
	c := validConfig()
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("sso", "config", c)
	if strings.Contains(b.String(), c.ClientSecret) {
		t.Errorf("log line %s contains the client secret", b.String())
	}
	if s := fmt.Sprint(c.LogValue()); strings.Contains(s, c.ClientSecret) {
		t.Errorf("LogValue %s contains the client secret", s)
	}
}
