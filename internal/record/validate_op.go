package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/profile"
	"github.com/phivault/phivault/internal/storage"
)

// ValidateInput is a $validate request: the resource type and id of
// the URL (id "" at the type level), the resource to validate (nil: the
// stored one, at the instance level without a mode), the mode (""
// create, update or delete) and the profiles named by the client.
type ValidateInput struct {
	Type, ID string
	Resource fhir.Resource
	Mode     string
	Profiles []string
}

// ValidateResource answers $validate (R4) with an OperationOutcome. It
// stores nothing. The resource is checked against the base R4 rules
// (the validator every write runs, and the record's own business rules)
// and against each profile named (in the request or meta.profile) that
// the caller may read (package profile states the subset).
//
// Authorization is that of what the mode simulates, so $validate tells
// nothing a write would not: mode create is decided as a create of the
// resource, update as an update of the current version and of the new
// one, delete as a delete; and at the instance level the current
// version must be readable by the caller — an id the caller may not
// read answers exactly as one that does not exist (404). A refused
// decision is the write's refusal (403), audited as such.
func (s *Service) ValidateResource(ctx context.Context, c Caller, in ValidateInput) ([]byte, error) {
	switch in.Mode {
	case "", "create", "update", "delete":
	default:
		return nil, invalid("mode must be create, update or delete")
	}
	if in.ID == "" && (in.Mode == "update" || in.Mode == "delete") {
		return nil, invalid("modes update and delete validate an existing resource: call $validate on the instance, /{type}/{id}/$validate")
	}
	if in.Resource != nil && in.Resource.Type() != in.Type {
		return nil, invalid("the resourceType of the resource does not match the URL")
	}
	var cur storage.Version
	var curBody []byte
	exists := false
	if in.ID != "" {
		var err error
		if cur, curBody, exists, err = s.validateTarget(ctx, c, in.Type, in.ID); err != nil {
			return nil, err
		}
		if !exists && in.Mode != "update" {
			return nil, s.recordMiss(ctx, c, audit.ActionRead, in.Type+"/"+in.ID, notFound("resource not found"))
		}
	}
	res := in.Resource
	if res == nil {
		switch {
		case in.Mode == "create" || in.Mode == "update":
			return nil, invalid("modes create and update need the resource to validate")
		case in.Mode == "" && in.ID == "":
			return nil, invalid("the resource to validate is required")
		case in.Mode == "" && cur.Deleted:
			return nil, gone("the resource was deleted")
		case in.Mode == "":
			// The stored version itself is validated: a read, audited.
			if _, err := s.readVersion(ctx, c, audit.ActionRead, cur); err != nil {
				return nil, err
			}
			r, err := s.Parse(curBody)
			if err != nil {
				return nil, err
			}
			res = r
		}
	}
	var issues []map[string]any
	add := func(sev, code, path, msg string) {
		m := map[string]any{"severity": sev, "code": code, "diagnostics": msg}
		if path != "" {
			m["expression"] = []any{path}
		}
		issues = append(issues, m)
	}
	if in.Mode == "delete" {
		if err := s.decideValidate(ctx, c, audit.ActionDelete, cur, curBody); err != nil {
			return nil, err
		}
		add("information", "informational", "", "the resource may be deleted")
		return outcome(issues)
	}
	if in.Mode == "update" && res.ID() != in.ID {
		add("error", "invalid", in.Type+".id", "the id in the resource must match the id in the URL")
	}
	// The write's own preparation: the decidability rules (a literal
	// patient reference, a readable Consent...), labels, the owner.
	if in.Mode == "create" || in.Mode == "update" {
		clone, err := fhir.Decode(bytes.NewReader(mustMarshal(res)), s.limits)
		if err != nil {
			return nil, decodeError(err)
		}
		if in.Mode == "create" {
			clone.SetID("validate")
		}
		p, err := s.prepareVersion(ctx, nil, clone, 1, s.now())
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == nil || errors.Is(err, ErrUnavailable) {
				return nil, err
			}
			for _, is := range e.Issues {
				add("error", is.Code, is.Location, is.Diagnostic)
			}
		} else {
			if in.Mode == "update" && exists {
				if err := s.decideValidate(ctx, c, audit.ActionUpdate, cur, curBody); err != nil {
					return nil, err
				}
			}
			a := audit.ActionCreate
			if in.Mode == "update" && exists {
				a = audit.ActionUpdate
			}
			if err := s.decideValidate(ctx, c, a, storage.Version{Type: p.v.Type, ID: in.ID, Owner: p.v.Owner}, p.body); err != nil {
				return nil, err
			}
		}
	}
	// Base R4 validation, as every write runs it.
	if err := s.val.Validate(res); err != nil {
		var ve *fhir.ValidationError
		if !errors.As(err, &ve) {
			if errors.Is(err, fhir.ErrUnknownType) {
				return nil, failCause(ErrInvalid, "not-supported", "unknown or non-R4 resource type", err)
			}
			return nil, internal(err)
		}
		for _, is := range ve.Issues {
			add("error", "invalid", is.Path, is.Message)
		}
	}
	if err := s.resourceCheck(res); err != nil {
		for _, is := range AsError(err).Issues {
			add("error", is.Code, is.Location, is.Diagnostic)
		}
	}
	// Profiles: those named, then those the resource claims.
	f := s.canonicals(c)
	v := profile.Validator{Defs: f, Codes: f}
	seen := map[string]bool{}
	claimed := metaProfiles(res)
	for i, u := range slices.Concat(in.Profiles, claimed) {
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		found, err := v.Validate(ctx, res, u, i < len(in.Profiles))
		if err != nil {
			return nil, err
		}
		for _, is := range found {
			add(is.Severity, is.Code, is.Path, is.Message)
		}
	}
	if len(issues) > fhir.MaxIssues {
		issues = issues[:fhir.MaxIssues]
	}
	hasError := slices.ContainsFunc(issues, func(m map[string]any) bool { return m["severity"] == "error" })
	if !hasError {
		msg := "no errors were found"
		if len(seen) > 0 {
			msg = fmt.Sprintf("no errors were found (base R4 rules and %d profile(s))", len(seen))
		}
		issues = append([]map[string]any{{"severity": "information", "code": "informational", "diagnostics": msg}}, issues...)
	}
	return outcome(issues)
}

// validateTarget reads the current version of typ/id for a decision:
// exists false if there is none. An id the caller may not read is
// answered as one that does not exist (the denial is audited, with the
// status the caller saw).
func (s *Service) validateTarget(ctx context.Context, c Caller, typ, id string) (storage.Version, []byte, bool, error) {
	cur, err := s.store.Current(ctx, typ, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Version{}, nil, false, nil
	}
	if err != nil {
		return storage.Version{}, nil, false, storageError(err)
	}
	body, err := s.decisionBody(ctx, s.store, cur)
	if err != nil {
		return storage.Version{}, nil, false, err
	}
	if _, err := s.check(ctx, c, audit.ActionRead, cur, body); err != nil {
		var e *Error
		if errors.As(err, &e) && e.denied != nil && StatusCode(e) != statusUnavailable {
			e.denied.Status = statusNotFound
			if rerr := s.recordDenial(ctx, e); rerr != e {
				return storage.Version{}, nil, false, rerr
			}
			return storage.Version{}, nil, false, failCause(ErrNotFound, "not-found", "resource not found", ErrForbidden)
		}
		return storage.Version{}, nil, false, s.recordDenial(ctx, err)
	}
	return cur, body, true, nil // decisionBody opened it (or the last live version)
}

// decideValidate decides the write a mode simulates; a refusal is
// audited and returned.
func (s *Service) decideValidate(ctx context.Context, c Caller, a audit.Action, v storage.Version, body []byte) error {
	if _, err := s.check(ctx, c, a, v, body); err != nil {
		return s.recordDenial(ctx, err)
	}
	return nil
}

func metaProfiles(res fhir.Resource) []string {
	m, _ := res["meta"].(map[string]any)
	list, _ := m["profile"].([]any)
	var out []string
	for _, p := range list {
		if s, ok := p.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func mustMarshal(res fhir.Resource) []byte {
	b, err := res.Marshal()
	if err != nil {
		return nil
	}
	return b
}

func outcome(issues []map[string]any) ([]byte, error) {
	list := make([]any, len(issues))
	for i, m := range issues {
		list[i] = m
	}
	return json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": list})
}
