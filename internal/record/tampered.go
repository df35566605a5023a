package record

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/phivault/phivault/internal/storage"
)

// Tampered rows. A stored version that does not open under its owner's
// key with its own type, id and version (AEAD associated data) was
// modified, moved or copied in the database. Reading that version
// answers 500. A search, a history or $everything that meets one leaves
// that row out and carries, in its place, an OperationOutcome entry
// naming it ("Type/id/_history/v": identifiers only, never content),
// instead of failing as a whole: one tampered row must not make every
// other record unreadable. An instance history, and the vread of an
// older version, are decided on the current version: when that one is
// tampered, they are served only to a caller admitted to its owner
// whatever the content, and denied to anyone else (decideOnCurrent).
// The server logs each such row once per process (an error line naming
// it); `phivault verify` lists them all.

// maxTamperedSeen bounds the set of rows already logged; when full it
// is cleared (a row may then be logged again).
const maxTamperedSeen = 1024

func tamperedError(v storage.Version, cause error) *Error {
	return &Error{Kind: ErrTampered,
		Issues: []Issue{{Code: "exception", Diagnostic: "a stored resource failed its integrity check"}},
		Err:    fmt.Errorf("%w: opening %s: %w", ErrTampered, entityRef(v.Type, v.ID, v.Version), cause)}
}

// tamperedOutcome logs a tampered row (once) and returns the
// OperationOutcome that stands in its place in a Bundle.
func (s *Service) tamperedOutcome(v storage.Version) json.RawMessage {
	ref := entityRef(v.Type, v.ID, v.Version)
	s.tamperedMu.Lock()
	first := !s.tamperedSeen[ref]
	if first {
		if len(s.tamperedSeen) >= maxTamperedSeen {
			clear(s.tamperedSeen)
		}
		s.tamperedSeen[ref] = true
	}
	s.tamperedMu.Unlock()
	if first {
		s.logger.Error("a stored resource failed its integrity check and was left out of a result; run phivault verify",
			slog.String("resource", ref))
	}
	b, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []any{map[string]any{
			"severity":    "error",
			"code":        "exception",
			"diagnostics": ref + " failed its integrity check and was left out",
		}},
	})
	return b
}
