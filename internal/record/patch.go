package record

import (
	"context"
	"errors"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Patcher computes a resource's next version from its current one: a
// JSON Patch ([ParseJSONPatch]), a FHIRPath Patch
// ([Service.ParseFHIRPathPatch]) or a $meta-add / $meta-delete.
//
// Apply must not keep or change current, and its errors must be *Error
// values whose text quotes neither current nor the patch's values.
type Patcher interface {
	Apply(current []byte) ([]byte, error)
}

// maxJSONPatchOps bounds the operations of one JSON Patch: each one
// walks and may copy the document.
const maxJSONPatchOps = 1000

// JSONPatch is a parsed RFC 6902 JSON Patch; it implements [Patcher].
type JSONPatch struct {
	p        jsonpatch.Patch
	maxBytes int64
}

var _ Patcher = JSONPatch{}

// ParseJSONPatch reads an RFC 6902 JSON Patch document (the body of a
// PATCH with Content-Type application/json-patch+json). Its errors
// never quote the body.
func (s *Service) ParseJSONPatch(body []byte) (JSONPatch, error) {
	return parseJSONPatch(body, s.limits)
}

func parseJSONPatch(body []byte, lim fhir.Limits) (JSONPatch, error) {
	max := lim.MaxBytes
	if max <= 0 {
		max = fhir.DefaultMaxBytes
	}
	if int64(len(body)) > max {
		return JSONPatch{}, fail(ErrTooLarge, "too-costly", "the request body is larger than the server accepts")
	}
	p, err := jsonpatch.DecodePatch(body)
	if err != nil {
		return JSONPatch{}, invalid("JSON Patch: the body is not a JSON array of patch operations")
	}
	if len(p) == 0 {
		return JSONPatch{}, invalid("JSON Patch: the patch has no operation")
	}
	if len(p) > maxJSONPatchOps {
		return JSONPatch{}, fail(ErrInvalid, "too-costly", fmt.Sprintf("JSON Patch: more than %d operations", maxJSONPatchOps))
	}
	for i, op := range p {
		switch op.Kind() {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return JSONPatch{}, invalid(fmt.Sprintf("JSON Patch: operation %d: op must be add, remove, replace, move, copy or test", i))
		}
		if _, err := op.Path(); err != nil {
			return JSONPatch{}, invalid(fmt.Sprintf("JSON Patch: operation %d: path is missing", i))
		}
		// The library dereferences a missing (or null) value of a test
		// on the whole document: found by FuzzJSONPatch. FHIR has no
		// null values, so none is accepted.
		if k := op.Kind(); (k == "add" || k == "replace" || k == "test") && op["value"] == nil {
			return JSONPatch{}, invalid(fmt.Sprintf("JSON Patch: operation %d: %s needs a value other than null", i, k))
		}
	}
	return JSONPatch{p: p, maxBytes: max}, nil
}

// Apply implements [Patcher].
func (j JSONPatch) Apply(current []byte) (out []byte, err error) {
	defer func() {
		// A panic of the library on hostile input (one was found by
		// fuzzing, see parseJSONPatch) fails this request, not the server.
		if r := recover(); r != nil {
			out, err = nil, failCause(ErrUnprocessable, "processing", "JSON Patch: the patch could not be applied to the resource", fmt.Errorf("json patch panicked"))
		}
	}()
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // RFC 6902 has none
	opts.AccumulatedCopySizeLimit = j.maxBytes
	out, err = j.p.ApplyWithOptions(current, opts)
	if err == nil {
		if int64(len(out)) > j.maxBytes {
			return nil, fail(ErrTooLarge, "too-costly", "the patched resource is larger than the server accepts")
		}
		return out, nil
	}
	// The library's messages quote keys and values: only the kind of
	// failure is told.
	msg := "the patch could not be applied to the resource"
	var copySize *jsonpatch.AccumulatedCopySizeError
	switch {
	case errors.Is(err, jsonpatch.ErrTestFailed):
		msg = "a test operation failed"
	case errors.Is(err, jsonpatch.ErrMissing):
		msg = "an operation's path, from or value is missing, or names no element"
	case errors.Is(err, jsonpatch.ErrInvalidIndex):
		msg = "an operation names an array index that does not exist"
	case errors.As(err, &copySize):
		return nil, failCause(ErrTooLarge, "too-costly", "JSON Patch: the copy operations make the resource too large", err)
	}
	return nil, failCause(ErrUnprocessable, "processing", "JSON Patch: "+msg, errors.New("json patch failed"))
}

// Patch applies p to the current version of typ/id and stores the
// result as its next version. The result is validated and authorized
// exactly as a PUT of it would be (on the current version and on the
// result: a patch cannot move a resource to another patient or relabel
// it out of the caller's reach unless an update could), and the caller
// must be allowed to read the current version, unmasked (the patch
// reads it, and a test operation would probe it). ifMatch > 0 requires
// the current version to be ifMatch. A resource the caller may not know
// exists answers as one that does not (404), If-Match or not. The write
// is audited as an update. The returned Stored holds the new version.
func (s *Service) Patch(ctx context.Context, c Caller, typ, id string, p Patcher, ifMatch int64) (Stored, error) {
	if !ValidID(id) {
		return Stored{}, invalid("the id in the URL is not a valid FHIR id")
	}
	return s.patchWith(ctx, c, typ, id, p, func(context.Context, storage.Tx) (string, error) { return id, nil }, ifMatch)
}

// ConditionalPatch is [Service.Patch] of the one resource of typ that
// query matches among those the caller may see: none is 404, more than
// one 412.
func (s *Service) ConditionalPatch(ctx context.Context, c Caller, typ, query string, p Patcher, ifMatch int64) (Stored, error) {
	_ = s.prewarm(ctx, c, &authz.NeedsFacts{Filter: typ})
	return s.patchWith(ctx, c, typ, "", p, func(ctx context.Context, tx storage.Tx) (string, error) {
		q, err := s.conditionQuery(ctx, c, tx, typ, query)
		if err != nil {
			return "", err
		}
		v, found, err := s.matchOne(ctx, tx, q)
		if err != nil {
			return "", err
		}
		if !found {
			return "", notFound("no resource matches the conditional query")
		}
		return v.ID, nil
	}, ifMatch)
}

// patchWith runs a patch of the resource target resolves (in the
// write transaction): typ/id, or (id "") a conditional query's match.
func (s *Service) patchWith(ctx context.Context, c Caller, typ, id string, p Patcher, target func(context.Context, storage.Tx) (string, error), ifMatch int64) (Stored, error) {
	ref := typ
	if id != "" {
		ref = typ + "/" + id
		if cur, err := s.store.Current(ctx, typ, id); err == nil {
			_ = s.prewarm(ctx, c, &authz.NeedsFacts{Owner: string(cur.Owner)})
		}
	}
	var st Stored
	var owner ident.Owner
	err := s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		id, err := target(ctx, tx)
		if err != nil {
			return err
		}
		v, res, err := s.patch(ctx, tx, c, typ, id, p, ifMatch)
		if err != nil {
			return err
		}
		st, owner = storedOf(v, nil), v.Owner
		st.JSON, err = res.Marshal()
		return err
	})
	if missing(err) {
		return Stored{}, s.recordMiss(ctx, c, audit.ActionUpdate, ref, storageError(err))
	}
	if err != nil {
		return Stored{}, storageError(s.recordDenial(ctx, err))
	}
	s.changed(typ, owner)
	return st, nil
}

// patch applies p to typ/id in tx: decisions on the current version
// (update and unmasked read), If-Match, then the result is written by
// update, which decides on it as on any PUT.
func (s *Service) patch(ctx context.Context, tx storage.Tx, c Caller, typ, id string, p Patcher, ifMatch int64) (storage.Version, fhir.Resource, error) {
	cur, err := tx.Current(ctx, typ, id)
	if err != nil {
		return storage.Version{}, nil, err // not found: a miss
	}
	body, err := s.decisionBody(ctx, tx, cur)
	if err != nil {
		return storage.Version{}, nil, err
	}
	if _, err := s.checkWith(ctx, tx, c, audit.ActionUpdate, cur, body); err != nil {
		return storage.Version{}, nil, err
	}
	d, err := s.decideWith(ctx, tx, c, audit.ActionUpdate, authz.Read, cur, body)
	if err != nil {
		return storage.Version{}, nil, err
	}
	if d.Mask {
		return storage.Version{}, nil, fail(ErrForbidden, "forbidden",
			"this resource is shown to you masked (minimum necessary), so it cannot be patched; use update")
	}
	if ifMatch > 0 && cur.Version != ifMatch {
		return storage.Version{}, nil, fail(ErrPreconditionFailed, "conflict",
			fmt.Sprintf("If-Match version %d is not the current version %d", ifMatch, cur.Version))
	}
	if cur.Deleted {
		return storage.Version{}, nil, gone("the resource was deleted")
	}
	out, err := p.Apply(body)
	if err != nil {
		return storage.Version{}, nil, AsError(err)
	}
	res, err := s.Parse(out)
	if err != nil {
		e := AsError(err)
		return storage.Version{}, nil, &Error{Kind: ErrUnprocessable, Err: e.Err,
			Issues: []Issue{{Code: "invalid", Diagnostic: "the patched resource is not valid FHIR JSON: " + e.Issues[0].Diagnostic}}}
	}
	if res.Type() != typ || res.ID() != id {
		return storage.Version{}, nil, fail(ErrUnprocessable, "business-rule", "a patch cannot change the resource's type or id")
	}
	if err := s.validate(res); err != nil {
		return storage.Version{}, nil, err
	}
	if e, ok := p.(*metaEdit); ok && e.del {
		// $meta-delete asks for exactly the removal: refused, not
		// quietly undone, when the caller may not lower labels.
		if err := s.refuseUnlabel(ctx, tx, c, cur, body, res); err != nil {
			return storage.Version{}, nil, err
		}
	}
	v, _, _, err := s.update(ctx, tx, c, res, cur.Version, nil)
	return v, res, err
}
