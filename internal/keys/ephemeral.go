package keys

import (
	"fmt"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
)

// EphemeralPRF is a keyed pseudorandom function whose key exists only in
// this value: a fresh HMAC-SHA256 Tink keyset (256-bit key) that is never
// serialised, wrapped or stored. When the value is dropped the key is
// gone, so outputs made with it can be neither recomputed nor linked to
// the outputs of another EphemeralPRF. The de-identified export (package
// deid) makes one per export for its pseudonyms and date shifts.
//
// An EphemeralPRF is safe for concurrent use.
type EphemeralPRF struct {
	set *prf.Set
}

// NewEphemeralPRF returns a PRF under a new random key.
func NewEphemeralPRF() (*EphemeralPRF, error) {
	// HMAC-SHA256 as for the blind indexes: a standard PRF, 256-bit key.
	h, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("creating ephemeral prf: %w", err)
	}
	s, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, fmt.Errorf("creating ephemeral prf: %w", err)
	}
	return &EphemeralPRF{set: s}, nil
}

// Compute returns n bytes (1 to 32) of the PRF of input. Callers put a
// domain label in input so that outputs for different uses differ.
func (p *EphemeralPRF) Compute(input []byte, n uint32) ([]byte, error) {
	out, err := p.set.ComputePrimaryPRF(input, n)
	if err != nil {
		return nil, fmt.Errorf("computing ephemeral prf: %w", err)
	}
	return out, nil
}

// String hides the key.
func (p *EphemeralPRF) String() string { return "keys.EphemeralPRF{…}" }

// GoString hides the key.
func (p *EphemeralPRF) GoString() string { return p.String() }
