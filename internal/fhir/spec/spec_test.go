package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestIntegrity pins the vendored files to the hashes recorded in NOTICE.
func TestIntegrity(t *testing.T) {
	tests := []struct {
		name string
		load func() ([]byte, error)
		want string
	}{
		{"schema", Schema, "2ed0350b060540d8995584b4f0eec6a84c76e4acd1f118ca7ec59092b1179abd"},
		{"search parameters", SearchParameters, "25ecc568b04189894d2f82ef812d5ce1df586179bf7d182cfe226528ba9cde3a"},
		{"patient compartment", PatientCompartment, "29ca6ca7e678deea114d00a4024b5717b861b4915c6c375b9e591a30b5b702dc"},
		{"required elements", RequiredElements, "bc289e7ed8a641aa1b470639f6ae861ba195f2a65ff910e7506b49ff607fd6d0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.load()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != tt.want {
				t.Errorf("sha256 = %s, want %s", got, tt.want)
			}
		})
	}
}
