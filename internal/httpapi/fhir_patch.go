package httpapi

import (
	"bytes"
	"mime"
	"net/http"

	"github.com/phivault/phivault/internal/record"
)

// The write interactions beyond create, update and delete: PATCH (JSON
// Patch and FHIRPath Patch) and the conditional update, delete and
// patch of Type?query. The record decides and audits them (record.Patch,
// record.ConditionalUpdate, record.ConditionalDelete); these handlers
// only read the request.

// mediaJSONPatch is RFC 6902's media type.
const mediaJSONPatch = "application/json-patch+json"

// ifMatch reads If-Match: 0 when absent.
func ifMatch(r *http.Request) (int64, error) {
	im := r.Header.Get("If-Match")
	if im == "" {
		return 0, nil
	}
	v, err := record.ParseETag(im)
	if err != nil {
		return 0, httpError(http.StatusBadRequest, "invalid", `If-Match must be a version ETag such as W/"3"`)
	}
	return v, nil
}

// conditionalQuery is the search of a conditional interaction: the URL
// query without the parameters that shape the answer.
func conditionalQuery(r *http.Request) (string, error) {
	vals := r.URL.Query()
	vals.Del("_format")
	if len(vals) == 0 {
		return "", httpError(http.StatusBadRequest, "invalid", "a conditional interaction on a type needs a search query, such as Type?identifier=system|value")
	}
	return vals.Encode(), nil
}

// patcher reads a PATCH body by its media type: application/json-patch+json
// is a JSON Patch; application/fhir+json a FHIRPath Patch (Parameters);
// application/json either, told apart by the body (an array or an object).
func (s *Server) patcher(r *http.Request) (record.Patcher, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, httpError(http.StatusUnsupportedMediaType, "not-supported", "PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json (FHIRPath Patch)")
	}
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	if mt == mediaJSON {
		mt = mediaFHIRJSON
		if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
			mt = mediaJSONPatch
		}
	}
	switch mt {
	case mediaJSONPatch:
		return s.rec.ParseJSONPatch(body)
	case mediaFHIRJSON:
		res, err := s.rec.Parse(body)
		if err != nil {
			return nil, err
		}
		return s.rec.ParseFHIRPathPatch(res)
	}
	return nil, httpError(http.StatusUnsupportedMediaType, "not-supported", "PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json (FHIRPath Patch)")
}

// writeTarget is the resource a PUT or PATCH writes: Type/id, or the
// conditional query of Type?query (then id is "").
func writeTarget(r *http.Request) (typ, id, query string, err error) {
	if typ, err = resourceType(r); err != nil {
		return "", "", "", err
	}
	if r.PathValue("id") == "" {
		query, err = conditionalQuery(r)
		return typ, "", query, err
	}
	id, err = pathID(r)
	return typ, id, "", err
}

// patch is PATCH Type/id, or PATCH Type?query (conditional patch).
func (s *Server) patch(w http.ResponseWriter, r *http.Request) error {
	typ, id, q, err := writeTarget(r)
	if err != nil {
		return err
	}
	im, err := ifMatch(r)
	if err != nil {
		return err
	}
	p, err := s.patcher(r)
	if err != nil {
		return err
	}
	var st record.Stored
	if id != "" {
		st, err = s.rec.Patch(r.Context(), s.caller(r), typ, id, p, im)
	} else {
		st, err = s.rec.ConditionalPatch(r.Context(), s.caller(r), typ, q, p, im)
	}
	if err != nil {
		return err
	}
	s.writeStored(w, r, http.StatusOK, st, "patched")
	return nil
}

// conditionalDelete is DELETE Type?query: 204 whether one resource was
// deleted or none matched (R4: either is a success).
func (s *Server) conditionalDelete(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r)
	if err != nil {
		return err
	}
	q, err := conditionalQuery(r)
	if err != nil {
		return err
	}
	deleted, err := s.rec.ConditionalDelete(r.Context(), s.caller(r), typ, q)
	if err != nil {
		return err
	}
	if preferReturn(r) == record.ReturnOutcome {
		msg := "deleted"
		if !deleted {
			msg = "no resource matched; nothing was deleted"
		}
		writeJSON(w, r, http.StatusOK, record.Informational(msg))
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// meta is $meta on the system, a type or an instance.
func (s *Server) meta(w http.ResponseWriter, r *http.Request) error {
	var typ string
	if r.PathValue("type") != "" {
		var err error
		if typ, err = resourceType(r); err != nil {
			return err
		}
	}
	var out []byte
	var err error
	if r.PathValue("id") != "" {
		id, perr := pathID(r)
		if perr != nil {
			return perr
		}
		out, err = s.rec.Meta(r.Context(), s.caller(r), typ, id)
	} else {
		out, err = s.rec.MetaSummary(r.Context(), s.caller(r), typ)
	}
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, out)
	return nil
}

// metaEdit is $meta-add (del false) or $meta-delete on an instance.
func (s *Server) metaEdit(del bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		typ, id, err := typeAndID(r)
		if err != nil {
			return err
		}
		params, err := s.parseBody(r)
		if err != nil {
			return err
		}
		edit := s.rec.MetaAdd
		if del {
			edit = s.rec.MetaDelete
		}
		out, err := edit(r.Context(), s.caller(r), typ, id, params)
		if err != nil {
			return err
		}
		writeBody(w, r, http.StatusOK, out)
		return nil
	}
}
