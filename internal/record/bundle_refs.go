package record

import (
	"context"
	"fmt"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/storage"
)

// A Bundle's references: the targets of conditional updates and
// deletes, and the rewriting of urn:uuid and conditional references to
// the ids they resolve to (only resources the caller may see match).

// resolveTarget finds the id a conditional PUT, PATCH or DELETE applies to: ""
// when nothing matches, ErrPreconditionFailed when several do.
func (s *Service) resolveTarget(ctx context.Context, c Caller, tx storage.Tx, e *entry) (string, error) {
	if e.id != "" {
		return e.id, nil
	}
	q, err := s.conditionQuery(ctx, c, tx, e.typ, e.query)
	if err != nil {
		return "", err
	}
	v, found, err := s.matchOne(ctx, tx, q)
	if err != nil || !found {
		return "", err
	}
	return v.ID, nil
}

// rewriteRefs replaces references to Bundle fullUrls (urn:uuid:...) and
// conditional references (Type?query) with the resolved Type/id.
// Resolving a conditional reference reads through a keyedReader: a
// write transaction, or the store itself when a Bundle is prepared
// before its transaction starts.

func (s *Service) rewriteRefs(ctx context.Context, c Caller, tx keyedReader, res fhir.Resource, refs map[string]string) error {
	var walkErr error
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, val := range t {
				if k == "reference" {
					if ref, ok := val.(string); ok {
						nr, err := s.resolveRef(ctx, c, tx, ref, refs)
						if err != nil && walkErr == nil {
							walkErr = err
						}
						if nr != "" {
							t[k] = nr
						}
						continue
					}
				}
				walk(val)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(map[string]any(res))
	return walkErr
}

func (s *Service) resolveRef(ctx context.Context, c Caller, tx keyedReader, ref string, refs map[string]string) (string, error) {
	if r, ok := refs[ref]; ok {
		return r, nil
	}
	if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
		return "", invalid("a reference names a fullUrl that is not in the Bundle")
	}
	typ, query, ok := strings.Cut(ref, "?")
	if !ok || !fhir.IsR4Type(typ) || strings.Contains(typ, "/") {
		return "", nil
	}
	q, err := s.conditionQuery(ctx, c, tx, typ, query)
	if err != nil {
		return "", err
	}
	r, err := tx.Search(ctx, q)
	if err != nil {
		return "", err
	}
	if len(r.Versions) != 1 {
		return "", fail(ErrPreconditionFailed, "not-found",
			fmt.Sprintf("a conditional reference to %s matched %d resources; it must match exactly one", typ, len(r.Versions)))
	}
	resolved := typ + "/" + r.Versions[0].ID
	refs[ref] = resolved
	return resolved, nil
}
