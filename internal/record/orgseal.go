package record

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Organisation-sealed data outside any FHIR resource: what privacy and
// intrusion monitoring stores (ADR 0046: alerts, triage notes,
// suppression rules and the ingested data of another system). It is
// sealed with the organisation's data key ("org"), through the same KEK
// hierarchy, rotation and KEK epochs as every resource, and bound by the
// associated data to its kind, id and part so that no sealed value can
// be moved to another row.

// SealOrg seals text with the organisation's data key, bound to (kind,
// id, part). kind names the table ("MonitorAlert", "MonitorNote"...): it
// must not be a FHIR resource type. The key is created on first use.
func (s *Service) SealOrg(ctx context.Context, kind, id string, part int64, text []byte) ([]byte, error) {
	dek, err := s.dekForRead(ctx, OrgOwner, false)
	if errors.Is(err, storage.ErrNotFound) {
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			_, err := s.dekInTx(ctx, tx, OrgOwner, nil, true)
			return err
		})
		if err == nil || errors.Is(err, storage.ErrConflict) { // another writer made it first
			dek, err = s.dekForRead(ctx, OrgOwner, true)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loading the organisation key: %w", err)
	}
	return dek.Seal(text, orgAD(kind, id, part))
}

// OpenOrg opens what SealOrg sealed with the same kind, id and part.
func (s *Service) OpenOrg(ctx context.Context, kind, id string, part int64, sealed []byte) ([]byte, error) {
	dek, err := s.dekForRead(ctx, OrgOwner, false)
	if err != nil {
		return nil, fmt.Errorf("loading the organisation key: %w", err)
	}
	pt, err := dek.Open(sealed, orgAD(kind, id, part))
	if err != nil {
		// The record may be cached from before a rotation elsewhere.
		if dek, err2 := s.dekForRead(ctx, OrgOwner, true); err2 == nil {
			return dek.Open(sealed, orgAD(kind, id, part))
		}
	}
	return pt, err
}

// orgAD is the associated data of an organisation-sealed value. The "~"
// prefix keeps kind apart from every FHIR resource type (which are
// letters only), so a sealed resource can never open as one of these.
func orgAD(kind, id string, part int64) keys.ResourceAD {
	return keys.ResourceAD{Type: "~" + kind, ID: id, Version: part, Owner: OrgOwner}
}
