package record

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// AuthzSource is the authorizer's privileged read path (authz.Source and
// authz.NoteSealer): the entities its decisions are built from, read and
// decrypted without a decision (a decision cannot depend on itself), and
// the sealed notes of break-the-glass grants.
//
// It is a value of its own, not methods of Service, so that what a front
// end holds (a *Service) has only guarded reads: the composition root
// makes the one AuthzSource and hands it only to the authorizer
// (internal/archtest keeps NewAuthzSource out of every other package).
type AuthzSource struct{ s *Service }

var (
	_ authz.Source     = (*AuthzSource)(nil)
	_ authz.NoteSealer = (*AuthzSource)(nil)
)

// NewAuthzSource returns the authorizer's read path over s.
func NewAuthzSource(s *Service) *AuthzSource { return &AuthzSource{s: s} }

// Referencing implements authz.Source.
func (a *AuthzSource) Referencing(ctx context.Context, typ, param, ref string, limit int) ([]authz.Found, error) {
	p, err := a.s.parseSearch(typ, url.Values{param: {ref}}, false)
	if err != nil {
		return nil, err
	}
	p.q.Count, p.q.Total = limit, false
	return a.s.found(ctx, p.q)
}

// OwnedOfType implements authz.Source.
func (a *AuthzSource) OwnedOfType(ctx context.Context, owner, typ string, limit int) ([]authz.Found, error) {
	q := storage.Query{Type: typ, Count: limit, Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: []ident.Owner{ident.Owner(owner)}}}}}}
	return a.s.found(ctx, q)
}

// Resource implements authz.Source.
func (a *AuthzSource) Resource(ctx context.Context, typ, id string) (authz.Found, bool, error) {
	v, err := a.s.store.Current(ctx, typ, id)
	if errors.Is(err, storage.ErrNotFound) {
		return authz.Found{}, false, nil
	}
	if err != nil {
		return authz.Found{}, false, err
	}
	if v.Deleted {
		return authz.Found{}, false, nil
	}
	body, err := a.s.open(ctx, v)
	if errors.Is(err, ErrGone) {
		return authz.Found{}, false, nil
	}
	if err != nil {
		return authz.Found{}, false, err
	}
	return authz.Found{Type: v.Type, ID: v.ID, Owner: string(v.Owner), JSON: body}, true, nil
}

// JointOwners implements authz.Source.
func (a *AuthzSource) JointOwners(ctx context.Context, patients []string, limit int) (map[string][]string, error) {
	joints, err := a.s.jointOwners(ctx, asOwners(patients), limit)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(joints))
	for j, ps := range joints {
		out[string(j)] = ownerStrings(ps)
	}
	return out, nil
}

// OwnersOf implements authz.Source: label "" is any, "tag:X" a
// meta.tag code, otherwise a meta.security code.
func (a *AuthzSource) OwnersOf(ctx context.Context, typ, label string, limit int) ([]string, error) {
	q := storage.Query{Type: typ, Count: limit}
	if label != "" {
		param := labelParam
		if code, ok := strings.CutPrefix(label, "tag:"); ok {
			param, label = tagParam, code
		}
		h, err := a.s.labelHash(typ, param, label)
		if err != nil {
			return nil, err
		}
		q.Clauses = []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondHash, Param: param, Hashes: [][]byte{h}}}}}
	}
	r, err := a.s.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	seen := map[ident.Owner]bool{}
	var out []string
	for _, v := range r.Versions {
		if v.Owner != OrgOwner && !seen[v.Owner] {
			seen[v.Owner] = true
			out = append(out, string(v.Owner))
		}
	}
	return out, nil
}

func (s *Service) found(ctx context.Context, q storage.Query) ([]authz.Found, error) {
	r, err := s.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]authz.Found, 0, len(r.Versions))
	for _, v := range r.Versions {
		body, err := s.open(ctx, v)
		if errors.Is(err, ErrGone) {
			continue
		}
		if errors.Is(err, ErrTampered) && strings.HasPrefix(string(v.Owner), ident.PatientPrefix) {
			// One patient's tampered row (or key) must not make every
			// decision of the caller fail: the decision names it, and
			// decisions about that patient fail on its own reads.
			s.tamperedOutcome(v)
			out = append(out, authz.Found{Type: v.Type, ID: v.ID, Owner: string(v.Owner), Tampered: true})
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, authz.Found{Type: v.Type, ID: v.ID, Owner: string(v.Owner), JSON: body})
	}
	return out, nil
}

// OpenNote opens a note SealNote sealed for owner and grantID. After the
// patient's erasure it fails: the key is gone.
func (a *AuthzSource) OpenNote(ctx context.Context, owner, grantID string, sealed []byte) ([]byte, error) {
	o := ident.Owner(owner) // authz names owners as strings
	dek, err := a.s.dekForRead(ctx, o, false)
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	return dek.Open(sealed, keys.ResourceAD{Type: "BreakGlassNote", ID: grantID, Version: 1, Owner: o})
}

// SealNote seals text with owner's data key, bound to a break-the-glass
// grant id (authz.NoteSealer). The patient must have a key (exist).
func (a *AuthzSource) SealNote(ctx context.Context, owner, grantID string, text []byte) ([]byte, error) {
	o := ident.Owner(owner) // authz names owners as strings
	dek, err := a.s.dekForRead(ctx, o, false)
	if err != nil {
		return nil, fmt.Errorf("loading key of %s: %w", owner, err)
	}
	return dek.Seal(text, keys.ResourceAD{Type: "BreakGlassNote", ID: grantID, Version: 1, Owner: o})
}
