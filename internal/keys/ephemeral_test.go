package keys_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/phivault/phivault/internal/keys"
)

// TestEphemeralPRF: one key gives one answer per input; two keys give
// unrelated answers; the key never shows in a print.
func TestEphemeralPRF(t *testing.T) {
	a, err := keys.NewEphemeralPRF()
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.NewEphemeralPRF()
	if err != nil {
		t.Fatal(err)
	}
	x1, err := a.Compute([]byte("Patient/1"), 16)
	if err != nil {
		t.Fatal(err)
	}
	x2, _ := a.Compute([]byte("Patient/1"), 16)
	y, _ := a.Compute([]byte("Patient/2"), 16)
	z, _ := b.Compute([]byte("Patient/1"), 16)
	if len(x1) != 16 || !bytes.Equal(x1, x2) || bytes.Equal(x1, y) || bytes.Equal(x1, z) {
		t.Errorf("outputs %x %x %x %x", x1, x2, y, z)
	}
	if _, err := a.Compute([]byte("x"), 33); err == nil {
		t.Error("33 bytes of HMAC-SHA256 accepted")
	}
	if s := fmt.Sprintf("%v %#v %s", a, a, a); s != "keys.EphemeralPRF{…} keys.EphemeralPRF{…} keys.EphemeralPRF{…}" {
		t.Errorf("printed as %q", s)
	}
}
