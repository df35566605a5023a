package record

import (
	"context"
	"errors"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// Misses are attempts too (DESIGN §6): a read, vread, history,
// $everything or delete of an id that does not exist leaves an event
// (outcome error, status 404, the entity named as asked: "Type/id", or
// "Type/id/_history/v" for a missing version), wherever the request
// came from: the FHIR API, a Bundle entry, the web UI. Monitoring sees
// enumeration of ids this way. The event names no patient: nothing was
// disclosed and the id may name nobody.
//
// If the event cannot be made durable, the answer is 503 instead of 404
// (fail closed).

// recordMiss records a not-found access to ref and returns err (the
// not-found error to answer), or the recording failure.
func (s *Service) recordMiss(ctx context.Context, c Caller, a audit.Action, ref string, err error) error {
	ev := s.event(c, a)
	ev.Outcome = audit.OutcomeError
	ev.Status = statusNotFound
	ev.Entities = []string{missRef(ref)}
	if rerr := s.recordRead(ctx, ev); rerr != nil {
		return rerr
	}
	return err
}

// missing reports whether err is storage's not-found (and not, say, a
// not-found wrapped by a denial that conceals existence: that one
// carries its own event).
func missing(err error) bool {
	var e *Error
	return errors.Is(err, storage.ErrNotFound) && !errors.As(err, &e)
}

// missRef is ref if its id is a valid FHIR id (the callers validate,
// this is the guarantee), else the type alone: a value that is no id
// (a name typed where an id was expected) never enters the log.
func missRef(ref string) string {
	typ, rest, _ := strings.Cut(ref, "/")
	id, _, _ := strings.Cut(rest, "/")
	if !ValidID(id) {
		return typ
	}
	return ref
}
