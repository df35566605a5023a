package oidc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/identity"
)

func testConfig() *Config {
	c := Config{RoleMap: map[string]identity.Role{"clinicians": identity.RolePhysician, "nursing": identity.RoleNurse}}.withDefaults()
	return &c
}

func TestParseClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		roles   []identity.Role
		mfa     bool
		err     error
	}{
		{"groups array", `{"sub":"a","groups":["nursing","clinicians","x"],"amr":["pwd","mfa"]}`,
			[]identity.Role{identity.RoleNurse, identity.RolePhysician}, true, nil},
		{"single group string", `{"sub":"a","groups":"nursing"}`, []identity.Role{identity.RoleNurse}, false, nil},
		{"group names are case-sensitive", `{"sub":"a","groups":["Nursing"]}`, nil, false, ErrNoRole},
		{"groups of the wrong type", `{"sub":"a","groups":{"nursing":true}}`, nil, false, ErrInvalidToken},
		{"amr of the wrong type", `{"sub":"a","groups":["nursing"],"amr":"otp"}`, nil, false, ErrInvalidToken},
		{"no subject", `{"groups":["nursing"]}`, nil, false, ErrInvalidToken},
		{"not an object", `[1]`, nil, false, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := parseClaims(testConfig(), []byte(tt.payload))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("parseClaims: %v, want %v", err, tt.err)
			}
			if tt.err == nil && (!slices.Equal(id.Roles, tt.roles) || id.MFA != tt.mfa) {
				t.Errorf("roles %v mfa %v, want %v %v", id.Roles, id.MFA, tt.roles, tt.mfa)
			}
		})
	}
}

// FuzzParseClaims checks that no payload panics, that roles only ever
// come from the role map, and that success always has a subject and a role.
func FuzzParseClaims(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "claims", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := testConfig()
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, err := parseClaims(cfg, payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoRole) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if id.Subject == "" || len(id.Roles) == 0 {
			t.Fatalf("accepted without subject or role: %+v", id)
		}
		for _, r := range id.Roles {
			if r != identity.RolePhysician && r != identity.RoleNurse {
				t.Fatalf("role %q not from the role map", r)
			}
		}
	})
}
