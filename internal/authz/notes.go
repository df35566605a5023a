package authz

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Clinical notes (DocumentReference) carry who wrote them (author) and
// who signed them (authenticator), and the chart shows both: a note is
// the legal record of a clinician's words. So a user writes (creates,
// edits, signs, retracts) only a note that names them among its authors,
// and signs only as themself: the policies see whether the body being
// written (or, for an update, the current version) names someone else
// ("notes-written-by-their-author"). Service credentials, which import
// notes written elsewhere, are exempt there.

// foreignNote reads a DocumentReference body and reports whether it
// names authors none of which is the caller (one of self: its fhirUser
// and PractitionerRoles), and whether it names a signer who is not the
// caller. A note naming no author or no signer is not foreign on that
// count.
func foreignNote(body []byte, self []string) (author, signer bool, err error) {
	var d struct {
		Author        []reference `json:"author"`
		Authenticator *reference  `json:"authenticator"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return false, false, fmt.Errorf("reading a DocumentReference's authors: %w", ErrUndecidable)
	}
	if len(d.Author) > 0 {
		author = !slices.ContainsFunc(d.Author, func(r reference) bool { return r.Reference != "" && slices.Contains(self, r.Reference) })
	}
	if d.Authenticator != nil && d.Authenticator.Reference != "" {
		signer = !slices.Contains(self, d.Authenticator.Reference)
	}
	return author, signer, nil
}
