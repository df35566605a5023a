package httpapi

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/fhir/terminology"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

// terminologyRoutes mounts the terminology operations and $validate
// (ADR 0032). Each takes GET (query parameters) and POST (a Parameters
// body, or a form), at the type and the instance level.
func (s *Server) terminologyRoutes(mux *http.ServeMux) {
	for _, op := range []struct {
		path string
		h    web.HandlerFunc
	}{
		{"CodeSystem/$lookup", s.terminologyOp(s.rec.Lookup)}, {"CodeSystem/{id}/$lookup", s.terminologyOp(s.rec.Lookup)},
		{"ValueSet/$expand", s.terminologyOp(s.rec.Expand)}, {"ValueSet/{id}/$expand", s.terminologyOp(s.rec.Expand)},
		{"ValueSet/$validate-code", s.validateCode("ValueSet")}, {"ValueSet/{id}/$validate-code", s.validateCode("ValueSet")},
		{"CodeSystem/$validate-code", s.validateCode("CodeSystem")}, {"CodeSystem/{id}/$validate-code", s.validateCode("CodeSystem")},
	} {
		mux.Handle("GET /fhir/"+op.path, s.handle(op.h))
		mux.Handle("POST /fhir/"+op.path, s.handle(op.h))
	}
	mux.Handle("POST /fhir/{type}/$validate", s.handle(auditapi.Or(s.validateResource, auditapi.Refuse)))
	mux.Handle("POST /fhir/{type}/{id}/$validate", s.handle(auditapi.Or(s.validateResource, auditapi.Refuse)))
}

// terminologyOps are the CapabilityStatement operations of type t that
// terminologyRoutes serves.
func terminologyOps(t string) []any {
	op := func(name, def string) any {
		return map[string]any{"name": name, "definition": "http://hl7.org/fhir/OperationDefinition/" + def}
	}
	var ops []any
	if t != "AuditEvent" { // the audit log is read-only (auditapi)
		ops = append(ops, op("validate", "Resource-validate"))
	}
	switch t {
	case "CodeSystem":
		ops = append(ops, op("lookup", "CodeSystem-lookup"), op("validate-code", "CodeSystem-validate-code"))
	case "ValueSet":
		ops = append(ops, op("expand", "ValueSet-expand"), op("validate-code", "ValueSet-validate-code"))
	}
	return ops
}

// opID is the {id} of an instance-level operation, "" at the type level.
func opID(r *http.Request) (string, error) {
	if r.PathValue("id") == "" {
		return "", nil
	}
	return pathID(r)
}

// opParams reads an operation's parameters: the query string, plus for
// a POST a Parameters resource (or a form) in the body.
func (s *Server) opParams(r *http.Request) (*terminology.Params, error) {
	p, err := terminology.FromQuery(r.URL.Query())
	if err != nil {
		return nil, paramsError(err)
	}
	if r.Method != http.MethodPost {
		return p, nil
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		b, err := s.readBody(r)
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, httpError(http.StatusBadRequest, "invalid", "the form could not be parsed")
		}
		fp, err := terminology.FromQuery(form)
		if err == nil {
			err = p.Merge(fp)
		}
		return p, paramsError(err)
	}
	res, err := s.parseBody(r)
	if err != nil {
		return nil, err
	}
	bp, err := terminology.FromParameters(res)
	if err == nil {
		err = bp.Merge(p)
	}
	return bp, paramsError(err)
}

func paramsError(err error) error {
	var te *terminology.Error
	if errors.As(err, &te) {
		code := "invalid"
		if errors.Is(err, terminology.ErrTooCostly) {
			code = "too-costly"
		}
		return httpError(http.StatusBadRequest, code, te.Public())
	}
	return err
}

// terminologyOp is the handler of a terminology operation: the
// optional instance id, the Parameters (query or body), run as the
// caller, the Parameters answer.
func (s *Server) terminologyOp(run func(ctx context.Context, c record.Caller, id string, p *terminology.Params) ([]byte, error)) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := opID(r)
		if err != nil {
			return err
		}
		p, err := s.opParams(r)
		if err != nil {
			return err
		}
		out, err := run(r.Context(), s.caller(r), id, p)
		if err != nil {
			return err
		}
		writeBody(w, r, http.StatusOK, out)
		return nil
	}
}

// validateCode is $validate-code on typ (ValueSet or CodeSystem).
func (s *Server) validateCode(typ string) web.HandlerFunc {
	return s.terminologyOp(func(ctx context.Context, c record.Caller, id string, p *terminology.Params) ([]byte, error) {
		return s.rec.ValidateCode(ctx, c, typ, id, p)
	})
}

// validateResource is $validate: the body is the resource, or a
// Parameters resource with resource, mode and profile; mode and profile
// may also come in the query string.
func (s *Server) validateResource(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r)
	if err != nil {
		return err
	}
	id, err := opID(r)
	if err != nil {
		return err
	}
	in := record.ValidateInput{Type: typ, ID: id}
	q, err := terminology.FromQuery(r.URL.Query())
	if err != nil {
		return paramsError(err)
	}
	var b []byte
	if id == "" || r.ContentLength != 0 { // an instance may be validated as stored
		if b, err = s.readBody(r); err != nil {
			return err
		}
	}
	if len(b) > 0 {
		res, err := s.rec.Parse(b)
		if err != nil {
			return err
		}
		if res.Type() == "Parameters" && typ != "Parameters" {
			bp, err := terminology.FromParameters(res)
			if err == nil {
				err = q.Merge(bp)
			}
			if err != nil {
				return paramsError(err)
			}
			obj, err := q.Object("resource")
			if err != nil {
				return paramsError(err)
			}
			if obj != nil {
				in.Resource = obj
			}
		} else {
			in.Resource = res
		}
	}
	if err := q.Only("resource", "mode", "profile", "_format", "_pretty"); err != nil {
		return paramsError(err)
	}
	if in.Mode, err = q.String("mode"); err != nil {
		return paramsError(err)
	}
	if in.Profiles, err = q.Strings("profile"); err != nil {
		return paramsError(err)
	}
	if in.Resource != nil && strings.TrimSpace(in.Resource.Type()) == "" {
		return httpError(http.StatusBadRequest, "invalid", "the resource to validate has no resourceType")
	}
	out, err := s.rec.ValidateResource(r.Context(), s.caller(r), in)
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, out)
	return nil
}
