package record

import (
	"context"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Conditional update and delete as REST interactions (PUT and DELETE of
// Type?query). They run the transaction Bundle's resolution
// (resolveTarget: conditionQuery narrowed by the caller's authorization,
// then matchOne under the query's lock) in their own write transaction,
// so a conditional query never matches, and so never reveals, what the
// caller may not see.

// ConditionalUpdate is PUT typ?query: with no match among the resources
// the caller may see, res is created (with its own id if it has one, as
// an update-as-create, else a new one); with one, res becomes its next
// version (res's id, if any, must be the match's); with more,
// ErrPreconditionFailed. ifMatch > 0 applies to the match.
func (s *Service) ConditionalUpdate(ctx context.Context, c Caller, typ, query string, res fhir.Resource, ifMatch int64) (st Stored, created bool, err error) {
	if res.Type() != typ {
		return Stored{}, false, invalid("the resourceType in the body does not match the URL")
	}
	if bodyID := res.ID(); bodyID != "" && !ValidID(bodyID) {
		return Stored{}, false, invalid("the id in the body is not a valid FHIR id")
	}
	if err := s.validate(res); err != nil {
		return Stored{}, false, err
	}
	_ = s.prewarm(ctx, c, &authz.NeedsFacts{Filter: typ})
	original := cloneJSON(map[string]any(res)).(map[string]any)
	e := &entry{method: methodPut, typ: typ, query: query, ifMatch: ifMatch}
	var owner ident.Owner
	var out fhir.Resource
	err = s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		out = fhir.Resource(cloneJSON(original).(map[string]any)) // every attempt from the body as received
		e.id = ""
		id, err := s.resolveTarget(ctx, c, tx, e)
		if err != nil {
			return err
		}
		switch bodyID := out.ID(); {
		case id != "" && bodyID != "" && bodyID != id:
			return invalid("the id in the body is not the id of the resource the conditional query matched")
		case id == "" && bodyID != "":
			id = bodyID // no match: an update-as-create with the client's id
		case id == "":
			if e.newID == "" {
				e.newID = s.newID() // the same on every attempt
			}
			id = e.newID
		}
		out.SetID(id)
		v, view, isNew, err := s.update(ctx, tx, c, out, ifMatch, nil)
		st, created, owner = storedOf(v, view), isNew, v.Owner
		return err
	})
	if err != nil {
		return Stored{}, false, storageError(s.recordDenial(ctx, err))
	}
	s.changed(typ, owner)
	return st, created, nil
}

// ConditionalDelete is DELETE typ?query: the one resource of typ the
// caller may see that query matches is deleted as by [Service.Delete];
// with none, nothing happens (deleted false); with more,
// ErrPreconditionFailed (conditionalDelete "single").
func (s *Service) ConditionalDelete(ctx context.Context, c Caller, typ, query string) (deleted bool, err error) {
	_ = s.prewarm(ctx, c, &authz.NeedsFacts{Filter: typ})
	e := &entry{method: methodDelete, typ: typ, query: query}
	var owner ident.Owner
	err = s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		deleted, owner = false, ""
		id, err := s.resolveTarget(ctx, c, tx, e)
		if err != nil || id == "" {
			return err
		}
		owner, err = s.delete(ctx, tx, c, typ, id)
		deleted = err == nil
		return err
	})
	if err != nil {
		return false, storageError(s.recordDenial(ctx, err))
	}
	if !deleted {
		// Nothing matched: an attempt all the same (DESIGN §6).
		return false, s.recordMiss(ctx, c, audit.ActionDelete, typ, nil)
	}
	s.changed(typ, owner)
	return true, nil
}
