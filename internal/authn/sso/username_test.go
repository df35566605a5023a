package sso

import (
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/identity"
)

func TestUsernameBase(t *testing.T) {
	tests := []struct {
		name, preferred, email, want string
	}{
		{"preferred username", "dlee", "dr.lee@hospital.example", "dlee"},
		{"spaces and case", "Dr Lee", "", "dr-lee"},
		{"email when no preferred", "", "Dr.Lee@Hospital.example", "dr.lee@hospital.example"},
		{"unicode and punctuation runs", "  Zoë  O'Brien!! ", "", "zo-o-brien"},
		{"too short falls back to email", "x", "ab@c.example", "ab@c.example"},
		{"nothing usable", "%%", "", fallbackUsername},
		{"leading punctuation trimmed", "..--admin--..", "", "admin"},
		{"long name cut", strings.Repeat("a", 200), "", strings.Repeat("a", identity.MaxUsernameLen-maxSuffix)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := usernameBase(tt.preferred, tt.email)
			if got != tt.want {
				t.Fatalf("usernameBase(%q, %q) = %q, want %q", tt.preferred, tt.email, got, tt.want)
			}
			for _, s := range []string{got, withSuffix(got, "ffffffff")} {
				if err := identity.ValidateUsername(s); err != nil {
					t.Fatalf("%q: %v", s, err)
				}
			}
		})
	}
}

func FuzzUsernameBase(f *testing.F) {
	f.Add("Dr Lee", "dr.lee@hospital.example")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, preferred, email string) {
		if err := identity.ValidateUsername(withSuffix(usernameBase(preferred, email), "20")); err != nil {
			t.Fatalf("%q %q: %v", preferred, email, err)
		}
	})
}
