package totp

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOathtool cross-checks against an independent implementation,
// Debian's oathtool, when it is installed (apt-get install oathtool). It
// is optional: the known-answer tests above are the CI gate.
func TestOathtool(t *testing.T) {
	path, err := exec.LookPath("oathtool")
	if err != nil {
		t.Skip("oathtool not installed; optional cross-check skipped")
	}
	key, err := NewSecret("phivault", "oathtool@example.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want func(t *testing.T) string
	}{
		{
			name: "random secret SHA1 6 digits",
			args: []string{"--totp", "-b", "-N", "@1700000000", key.Secret()},
			want: func(t *testing.T) string {
				c, err := Code(key.Secret(), time.Unix(1700000000, 0))
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
		},
		{
			name: "RFC 6238 SHA256 8 digits at 20000000000",
			args: []string{"--totp=sha256", "-d", "8", "-N", "@20000000000", hex.EncodeToString([]byte("12345678901234567890123456789012"))},
			want: func(*testing.T) string { return "77737706" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), path, tc.args...)
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("oathtool: %v: %s", err, stderr.String())
			}
			if got, want := strings.TrimSpace(out.String()), tc.want(t); got != want {
				t.Errorf("oathtool = %s, phivault = %s", got, want)
			}
		})
	}
}
