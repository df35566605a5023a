package record

import (
	"context"
	"encoding/base64"
	"mime"

	"github.com/phivault/phivault/internal/audit"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/storage"
)

// PATCH entries of batch and transaction Bundles (R4 http.html#transaction,
// fhirpatch.html): entry.request is PATCH Type/id or Type?query,
// entry.resource the patch: a Binary whose contentType is
// application/json-patch+json and whose data is the JSON Patch, or a
// Parameters (FHIRPath Patch). Each is decided, applied and audited by
// patch, exactly as the REST PATCH (Service.Patch).

// mediaJSONPatch is RFC 6902's media type.
const mediaJSONPatch = "application/json-patch+json"

// entryPatcher reads a PATCH entry's resource. Its errors never quote it.
func (s *Service) entryPatcher(body fhir.Resource) (Patcher, error) {
	switch body.Type() {
	case "Binary":
		ct, _ := body["contentType"].(string)
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != mediaJSONPatch {
			return nil, fail(ErrInvalid, "not-supported", "a PATCH entry's Binary must have contentType "+mediaJSONPatch+" (JSON Patch)")
		}
		data, _ := body["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || len(raw) == 0 {
			return nil, invalid("a PATCH entry's Binary data must be the JSON Patch document in base64")
		}
		return s.ParseJSONPatch(raw)
	case "Parameters":
		return s.ParseFHIRPathPatch(body)
	}
	return nil, invalid("a PATCH entry's resource must be a Binary (JSON Patch) or a Parameters (FHIRPath Patch)")
}

// patchEntry performs a PATCH entry in tx. A FHIRPath Patch's
// references (valueReference) to the Bundle's fullUrls, and conditional
// ones, are resolved as in any entry's resource first. A resource that
// does not exist answers exactly as one the caller may not know exists
// (404 "resource not found"), and is recorded as an attempt (e.miss).
func (s *Service) patchEntry(ctx context.Context, tx storage.Tx, c Caller, e *entry, refs map[string]string) error {
	e.res, e.miss, e.missA = nil, "", ""
	p := e.patcher
	if p == nil {
		params := fhir.Resource(cloneJSON(map[string]any(e.patchBody)).(map[string]any))
		if err := s.rewriteRefs(ctx, c, tx, params, refs); err != nil {
			return err
		}
		var err error
		if p, err = s.entryPatcher(params); err != nil {
			return err
		}
	}
	id, err := s.resolveTarget(ctx, c, tx, e)
	if err != nil {
		return err
	}
	if id == "" {
		return notFound("no resource matches the conditional query")
	}
	v, res, err := s.patch(ctx, tx, c, e.typ, id, p, e.ifMatch)
	if missing(err) {
		e.miss, e.missA = e.typ+"/"+id, audit.ActionUpdate
		return storageError(err)
	}
	if err != nil {
		return err
	}
	s.entryWritten(e, v, statusOK)
	e.res = res
	e.acted = v.Type + "/" + v.ID
	return nil
}
