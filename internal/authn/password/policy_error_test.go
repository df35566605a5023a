package password

import (
	"errors"
	"fmt"
	"testing"
)

// PolicyError finds the shown reason in a wrapped chain, and nothing in
// the errors that must not be shown.
func TestPolicyError(t *testing.T) {
	for _, pe := range []error{ErrTooShort, ErrTooLong, ErrInvalidUTF8, ErrCommon, ErrContext} {
		if got := PolicyError(fmt.Errorf("set password: %w", pe)); got != pe {
			t.Errorf("PolicyError(wrapped %v) = %v", pe, got)
		}
	}
	for _, err := range []error{nil, ErrMalformed, ErrBusy, ErrUnsupported, errors.New("database down")} {
		if got := PolicyError(err); got != nil {
			t.Errorf("PolicyError(%v) = %v, want nil", err, got)
		}
	}
}
