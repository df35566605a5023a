package record

import (
	"context"

	"github.com/phivault/phivault/internal/ident"
)

// Owner returns the compartment owner of typ/id ("Patient/<id>" or
// OrgOwner): of the current version, or of version when it is positive.
// It opens nothing and audits nothing: it reads key metadata only, for
// an access decision taken before the request runs (the SMART patient
// compartment gate). Errors: ErrNotFound, or a storage failure.
func (s *Service) Owner(ctx context.Context, typ, id string, version int64) (ident.Owner, error) {
	if version > 0 {
		v, err := s.store.VersionOf(ctx, typ, id, version)
		if err != nil {
			return "", storageError(err)
		}
		return v.Owner, nil
	}
	v, err := s.store.Current(ctx, typ, id)
	if err != nil {
		return "", storageError(err)
	}
	return v.Owner, nil
}
