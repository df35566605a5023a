package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/storage"
)

// Security labels (meta.security) decide who may read a resource, so a
// write must not lower them by the way: a PUT or a patch whose result
// lacks a label code the current version carries (in its meta or a
// contained resource's) lowers them, and that is decided as the policy
// action relabel on the current version (the privacy officer, the
// security administrator and service credentials in the defaults). When
// relabel is denied, an update keeps the current labels (they are put
// back into the result's meta.security, so an ordinary edit that left
// meta out still works), and $meta-delete of a label is refused (403).
// Adding labels is an ordinary update; tags and profiles are not labels.

// droppedLabels returns the security label codings of old (its
// meta.security and its contained resources') whose code the result
// res no longer carries, each as stored (with any extension).
func droppedLabels(old []byte, res fhir.Resource) ([]map[string]any, error) {
	newBody, err := res.Marshal()
	if err != nil {
		return nil, internal(err)
	}
	keep, _, err := authz.ResourceLabels(newBody, false)
	if err != nil {
		return nil, labelsError(err)
	}
	type metaSec struct {
		Meta struct {
			Security []json.RawMessage `json:"security"`
		} `json:"meta"`
	}
	var o struct {
		metaSec
		Contained []metaSec `json:"contained"`
	}
	if err := json.Unmarshal(old, &o); err != nil {
		return nil, internal(fmt.Errorf("reading the current labels: %w", err))
	}
	all := slices.Clone(o.Meta.Security)
	for _, c := range o.Contained {
		all = append(all, c.Meta.Security...)
	}
	var out []map[string]any
	for _, raw := range all {
		var c map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			return nil, internal(fmt.Errorf("reading the current labels: %w", err))
		}
		code, _ := c["code"].(string)
		if code == "" || slices.Contains(keep, code) {
			continue
		}
		keep = append(keep, code) // once per code
		out = append(out, c)
	}
	return out, nil
}

// mayLower decides relabel on cur (body: its decision body). A policy
// denial is (false, nil); a failure to decide is an error (fail closed).
func (s *Service) mayLower(ctx context.Context, rd memberReader, c Caller, cur storage.Version, body []byte) (bool, authz.Decision, error) {
	d, err := s.decideWith(ctx, rd, c, audit.ActionUpdate, authz.Relabel, cur, body)
	if err == nil {
		return true, d, nil
	}
	if errors.Is(err, authz.ErrNeedsFacts) || len(d.Policies) == 0 || slices.Contains(d.Policies, "undecidable") {
		return false, d, err
	}
	return false, d, nil // denied by policy
}

// keepLabels puts back into res the security labels of the current
// version cur (decision body old) that res drops, unless the caller may
// lower them. It reports whether res was changed.
func (s *Service) keepLabels(ctx context.Context, rd memberReader, c Caller, cur storage.Version, old []byte, res fhir.Resource) (bool, error) {
	dropped, err := droppedLabels(old, res)
	if err != nil || len(dropped) == 0 {
		return false, err
	}
	ok, _, err := s.mayLower(ctx, rd, c, cur, old)
	if err != nil || ok {
		return false, err
	}
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	sec, _ := meta["security"].([]any)
	for _, l := range dropped {
		sec = append(sec, l)
	}
	meta["security"] = sec
	res["meta"] = meta
	return true, nil
}

// refuseUnlabel refuses a $meta-delete whose result res drops a security
// label of cur when the caller may not lower labels: 403, recorded as a
// denied update. The labels are not named in the answer.
func (s *Service) refuseUnlabel(ctx context.Context, rd memberReader, c Caller, cur storage.Version, old []byte, res fhir.Resource) error {
	dropped, err := droppedLabels(old, res)
	if err != nil || len(dropped) == 0 {
		return err
	}
	ok, d, err := s.mayLower(ctx, rd, c, cur, old)
	if err != nil || ok {
		return err
	}
	e := s.denial(c, audit.ActionUpdate, cur, d, nil)
	ev := e.denied
	out := fail(ErrForbidden, "forbidden", "removing a security label is reserved to the privacy officer, the security administrator "+
		"and service credentials (policy action relabel); the resource is unchanged")
	ev.Status = StatusCode(out)
	out.denied = ev
	return out
}
