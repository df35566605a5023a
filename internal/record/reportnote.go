package record

import (
	"context"
	"fmt"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
)

// Access-report notes: a patient's comment on an access they do not
// recognise, and the privacy officer's closing note, may hold PHI. They
// are sealed with the patient's data key, bound to the report id, so
// erasing the patient shreds them with the record.

// reportNoteAD is the associated data of report id's note.
func reportNoteAD(owner ident.Owner, id string, part int64) keys.ResourceAD {
	return keys.ResourceAD{Type: "AccessReportNote", ID: id, Version: part, Owner: owner}
}

// Parts of a report sealed separately.
const (
	ReportComment   int64 = 1 // the patient's comment
	ReportCloseNote int64 = 2 // the privacy officer's note
)

// SealReportNote seals text (part ReportComment or ReportCloseNote of
// report id) with owner's ("Patient/<id>") data key.
func (s *Service) SealReportNote(ctx context.Context, owner ident.Owner, id string, part int64, text []byte) ([]byte, error) {
	dek, err := s.dekForRead(ctx, owner, false)
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	return dek.Seal(text, reportNoteAD(owner, id, part))
}

// OpenReportNote opens what SealReportNote sealed. It fails once the
// patient's key is erased.
func (s *Service) OpenReportNote(ctx context.Context, owner ident.Owner, id string, part int64, sealed []byte) ([]byte, error) {
	dek, err := s.dekForRead(ctx, owner, false)
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	return dek.Open(sealed, reportNoteAD(owner, id, part))
}

// Parts of a correction request (privacy.Amendments), sealed the same
// way under the request's own random id.
const (
	AmendmentRequest  int64 = 3 // what is wrong and what it should say
	AmendmentDecision int64 = 4 // the privacy officer's reason
)
