package record

import (
	"context"
	"encoding/json"

	"github.com/phivault/phivault/internal/fhir/terminology"
)

// Lookup answers CodeSystem/$lookup (R4): at the type level the code
// system is the one whose url is the system (or coding.system) asked
// for; at the instance level (id not "") it is CodeSystem/id, read as by
// GET. The answer is a Parameters resource. Errors: ErrInvalid for bad
// parameters, ErrNotFound for a code system or code not found.
func (s *Service) Lookup(ctx context.Context, c Caller, id string, p *terminology.Params) ([]byte, error) {
	if err := p.Only("code", "system", "version", "coding", "property", "_format", "_pretty"); err != nil {
		return nil, terminologyError(err)
	}
	codings, err := p.Codings("system", "version")
	if err != nil {
		return nil, terminologyError(err)
	}
	cd := codings[0]
	props, err := p.Strings("property")
	if err != nil {
		return nil, terminologyError(err)
	}
	cs, err := s.codeSystem(ctx, c, id, nil, cd.System, cd.Version)
	if err != nil {
		return nil, err
	}
	out, err := terminology.Lookup(cs, cd.Code, props)
	if err != nil {
		return nil, terminologyError(err)
	}
	return json.Marshal(out)
}

// Expand answers ValueSet/$expand (R4) with the value set and its
// expansion: ValueSet/id at the instance level, else the valueSet
// resource given, else the stored value set whose url is url. Codes are
// resolved through the caller's authorization (see canonicals).
func (s *Service) Expand(ctx context.Context, c Caller, id string, p *terminology.Params) ([]byte, error) {
	if err := p.Only("url", "valueSet", "valueSetVersion", "filter", "count", "offset", "_format", "_pretty"); err != nil {
		return nil, terminologyError(err)
	}
	f := s.canonicals(c)
	body, vs, err := s.valueSet(ctx, c, f, id, p)
	if err != nil {
		return nil, err
	}
	var opt terminology.ExpandOptions
	if opt.Filter, err = p.String("filter"); err == nil {
		if opt.Count, err = p.Int("count", 0); err == nil {
			opt.Offset, err = p.Int("offset", 0)
		}
	}
	if err != nil {
		return nil, terminologyError(err)
	}
	exp, err := terminology.Expand(ctx, f, vs, opt)
	if err != nil {
		return nil, terminologyError(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, internal(err)
	}
	return json.Marshal(terminology.ExpandedValueSet(m, exp, opt.Count, "urn:uuid:"+s.newID(), s.now()))
}

// ValidateCode answers ValueSet/$validate-code and
// CodeSystem/$validate-code (R4) with a Parameters resource (result,
// message, display). typ is "ValueSet" or "CodeSystem"; id "" is the
// type level. A codeableConcept is valid if one of its codings is.
func (s *Service) ValidateCode(ctx context.Context, c Caller, typ, id string, p *terminology.Params) ([]byte, error) {
	var v terminology.Validation
	if typ == "ValueSet" {
		if err := p.Only("url", "valueSet", "valueSetVersion", "code", "system", "systemVersion", "display", "coding", "codeableConcept", "_format", "_pretty"); err != nil {
			return nil, terminologyError(err)
		}
		codings, err := p.Codings("system", "systemVersion")
		if err != nil {
			return nil, terminologyError(err)
		}
		f := s.canonicals(c)
		_, vs, err := s.valueSet(ctx, c, f, id, p)
		if err != nil {
			return nil, err
		}
		for i, cd := range codings {
			r, err := terminology.ValidateInValueSet(ctx, f, vs, cd)
			if err != nil {
				return nil, terminologyError(err)
			}
			if i == 0 || r.Result {
				v = r
			}
			if r.Result {
				break
			}
		}
		return json.Marshal(terminology.ValidationParameters(v))
	}
	if err := p.Only("url", "codeSystem", "version", "code", "display", "coding", "codeableConcept", "_format", "_pretty"); err != nil {
		return nil, terminologyError(err)
	}
	codings, err := p.Codings("url", "version")
	if err != nil {
		return nil, terminologyError(err)
	}
	u, err := p.String("url")
	if err != nil {
		return nil, terminologyError(err)
	}
	if u == "" {
		u = codings[0].System
	}
	version, _ := p.String("version")
	given, err := p.Object("codeSystem")
	if err != nil {
		return nil, terminologyError(err)
	}
	cs, err := s.codeSystem(ctx, c, id, given, u, version)
	if err != nil {
		return nil, err
	}
	for i, cd := range codings {
		r, err := terminology.ValidateInCodeSystem(cs, cd)
		if err != nil {
			return nil, terminologyError(err)
		}
		if i == 0 || r.Result {
			v = r
		}
		if r.Result {
			break
		}
	}
	return json.Marshal(terminology.ValidationParameters(v))
}

// codeSystem is CodeSystem/id (read as GET reads it), or the one given
// in the request, or the stored one whose url is u.
func (s *Service) codeSystem(ctx context.Context, c Caller, id string, given map[string]any, u, version string) (*terminology.CodeSystem, error) {
	var body []byte
	switch {
	case id != "":
		st, err := s.Read(ctx, c, "CodeSystem", id)
		if err != nil {
			return nil, err
		}
		body = st.JSON
	case given != nil:
		var err error
		if body, err = json.Marshal(given); err != nil {
			return nil, invalid("the codeSystem parameter could not be read")
		}
	case u == "":
		return nil, invalid("name the code system: system (or url), or coding.system, or call the operation on a CodeSystem instance")
	default:
		var err error
		if body, err = s.canonicals(c).find(ctx, "CodeSystem", u, version); err != nil {
			return nil, err
		}
	}
	cs, err := terminology.ParseCodeSystem(body)
	if err != nil {
		return nil, terminologyError(err)
	}
	if id != "" && u != "" && u != cs.URL {
		return nil, invalid("the system asked for is not this code system's url")
	}
	return cs, nil
}

// valueSet is ValueSet/id, the valueSet resource given, or the stored
// value set whose url is the url parameter; with its JSON.
func (s *Service) valueSet(ctx context.Context, c Caller, f *canonicals, id string, p *terminology.Params) ([]byte, *terminology.ValueSet, error) {
	u, err := p.String("url")
	if err != nil {
		return nil, nil, terminologyError(err)
	}
	version, err := p.String("valueSetVersion")
	if err != nil {
		return nil, nil, terminologyError(err)
	}
	given, err := p.Object("valueSet")
	if err != nil {
		return nil, nil, terminologyError(err)
	}
	var body []byte
	switch {
	case id != "":
		st, err := s.Read(ctx, c, "ValueSet", id)
		if err != nil {
			return nil, nil, err
		}
		body = st.JSON
	case given != nil:
		if body, err = json.Marshal(given); err != nil {
			return nil, nil, invalid("the valueSet parameter could not be read")
		}
	case u == "":
		return nil, nil, invalid("name the value set: url, a valueSet resource, or call the operation on a ValueSet instance")
	default:
		if body, err = f.find(ctx, "ValueSet", u, version); err != nil {
			return nil, nil, err
		}
	}
	vs, err := terminology.ParseValueSet(body)
	if err != nil {
		return nil, nil, terminologyError(err)
	}
	if id != "" && u != "" && u != vs.URL {
		return nil, nil, invalid("the url asked for is not this value set's url")
	}
	return body, vs, nil
}

var _ terminology.Source = (*canonicals)(nil)
