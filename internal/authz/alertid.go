package authz

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// NewAlertID returns a new alert id, "alr_" and 16 random bytes in hex,
// read from r (crypto/rand when nil).
func NewAlertID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generating alert id: %w", err)
	}
	return "alr_" + hex.EncodeToString(b[:]), nil
}
