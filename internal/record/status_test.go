package record

import (
	"errors"
	"fmt"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

func TestStatusCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"invalid", invalid("bad"), 400},
		{"too large", fail(ErrTooLarge, "too-costly", "big"), 413},
		{"unprocessable", fail(ErrUnprocessable, "invalid", "x"), 422},
		{"not found", notFound("x"), 404},
		{"gone", gone("x"), 410},
		{"conflict", fail(ErrConflict, "conflict", "x"), 409},
		{"precondition", fail(ErrPreconditionFailed, "conflict", "x"), 412},
		{"unavailable", unavailable(errors.New("db down")), 503},
		{"forbidden", fail(ErrForbidden, "forbidden", "x"), 403},
		{"concealed denial", failCause(ErrNotFound, "not-found", "resource not found", ErrForbidden), 404},
		{"tampered", tamperedError(storage.Version{Type: "Patient", ID: "p1", Version: 1}, errors.New("mac")), 500},
		{"internal", internal(errors.New("boom")), 500},
		{"wrapped", fmt.Errorf("reading: %w", gone("x")), 410},
		{"not an *Error", errors.New("plain"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusCode(tt.err); got != tt.want {
				t.Errorf("StatusCode = %d, want %d", got, tt.want)
			}
			if _, ok := statusText[StatusCode(tt.err)]; !ok {
				t.Errorf("no reason phrase for %d", StatusCode(tt.err))
			}
		})
	}
	if e := fail(ErrTooLarge, "too-costly", "big"); !errors.Is(e, ErrInvalid) {
		t.Error("a too-large body no longer wraps ErrInvalid")
	}
	if got := statusLine(201); got != "201 Created" {
		t.Errorf("statusLine(201) = %q", got)
	}
}
