package oidc_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/phivault/phivault/internal/authn/oidc"
)

func TestNewFlow(t *testing.T) {
	t.Parallel()
	a, b := newFlow(t), newFlow(t)
	seen := map[string]bool{}
	for _, v := range []string{a.State, a.Nonce, a.Verifier, b.State, b.Nonce, b.Verifier} {
		// 256 bits in unpadded base64url; 43 is also RFC 7636's minimum.
		if len(v) != 43 || strings.ContainsAny(v, "+/=") {
			t.Errorf("value %q: want 43 base64url characters", v)
		}
		if seen[v] {
			t.Error("a flow value repeated")
		}
		seen[v] = true
	}
	if _, err := oidc.NewFlow(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewFlow succeeded without randomness")
	}
	// Injected randomness is used as given.
	f, err := oidc.NewFlow(bytes.NewReader(bytes.Repeat([]byte{0}, 96)))
	if err != nil || f.State != strings.Repeat("A", 43) {
		t.Errorf("NewFlow(zeros) = %v, %v", f.State, err)
	}
}

func TestFlowLogValue(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("login", "flow", f)
	for _, s := range []string{f.State, f.Nonce, f.Verifier} {
		if strings.Contains(b.String(), s) {
			t.Fatalf("log line %s contains a flow secret", b.String())
		}
	}
}

func TestCheckState(t *testing.T) {
	t.Parallel()
	f := newFlow(t)
	tests := []struct {
		name      string
		got, want string
		ok        bool
	}{
		{"match", f.State, f.State, true},
		{"other state", newFlow(t).State, f.State, false},
		{"prefix", f.State[:42], f.State, false},
		{"empty callback state", "", f.State, false},
		{"empty stored state", "", "", false},
		{"oversized", strings.Repeat(f.State, 10), f.State, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := oidc.CheckState(tt.got, tt.want)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, oidc.ErrState)) {
				t.Fatalf("CheckState: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
