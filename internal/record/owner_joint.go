package record

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Owners. A resource belongs to the patients it names (search.Registry
// PatientsOf): one patient's resources are sealed with that patient's
// key ("Patient/<id>"); a resource naming several patients — a Coverage
// whose subscriber is not its beneficiary, an Observation performed by
// another patient, a group Appointment, a List of patients — is sealed
// with a key of its own, the joint owner "Joint/<h>", where h is a keyed
// hash (the blind-index key) of the sorted patient references, and
// joint_owners records whom it stands for. Authorization decides such a
// resource for every patient it names (authz.Target.Patients), and
// erasing any of them destroys the joint key (storage.Tx.Shred). A
// resource naming no patient belongs to the organisation ("org").

// JointPrefix starts a joint owner.
const JointPrefix = storage.JointPrefix

// MaxPatientsPerResource bounds the patients one resource may name: a
// joint owner's patients are decided one by one on every access.
const MaxPatientsPerResource = 1000

// maxMemberCache bounds the joint-owner member cache. Members of a joint
// owner never change (the owner's name is a hash of them).
const maxMemberCache = 100000

// ownerOf returns the key owner of res and the patients it names. A
// Binary belongs to the patients of the resource its securityContext
// names (the document it is the content of), read through rd (the
// store when nil, or the write transaction).
func (s *Service) ownerOf(ctx context.Context, rd ownerReader, res fhir.Resource) (owner ident.Owner, patients []ident.Owner, err error) {
	ps := s.reg.PatientsOf(res)
	if res.Type() == "Binary" {
		extra, err := s.securityContextPatients(ctx, rd, res)
		if err != nil {
			return "", nil, err
		}
		ps = mergeIDs(ps, extra)
	}
	switch {
	case len(ps) == 0:
		return OrgOwner, nil, nil
	case len(ps) == 1:
		return ident.PatientOwner(ps[0]), []ident.Owner{ident.PatientOwner(ps[0])}, nil
	case len(ps) > MaxPatientsPerResource:
		return "", nil, fail(ErrUnprocessable, "too-costly",
			fmt.Sprintf("the resource names more than %d patients", MaxPatientsPerResource))
	}
	refs := make([]ident.Owner, len(ps))
	for i, p := range ps {
		refs[i] = ident.PatientOwner(p)
	}
	owner, err = s.jointName(refs)
	if err != nil {
		return "", nil, err
	}
	s.rememberMembers(owner, refs)
	return owner, refs, nil
}

// jointName returns the joint owner of the patients refs
// ("Patient/<id>", sorted, distinct): a keyed hash (the blind-index key)
// of them, so the name authenticates its patients; joint_owners rows
// that do not hash to it were altered.
func (s *Service) jointName(refs []ident.Owner) (ident.Owner, error) {
	h, err := s.keys.BlindIndex("joint-owner\x00" + strings.Join(ownerStrings(refs), "\x00"))
	if err != nil {
		return "", fmt.Errorf("naming a joint owner: %w", err)
	}
	return ident.JointOwner(hex.EncodeToString(h)), nil
}

// errJointRows fails a decision or an erasure about a joint owner whose
// joint_owners rows do not match its name: deciding for the recorded
// patients would skip the one whose row was deleted.
var errJointRows = errors.New("the patients recorded for a resource naming several patients do not match its owner (joint_owners altered); run phivault verify")

// jointOwners is storage.Reader.JointOwners with every owner's rows
// checked against its name (jointTampered when one does not match):
// authorization and $everything decide with these patients.
func (s *Service) jointOwners(ctx context.Context, patients []ident.Owner, limit int) (map[ident.Owner][]ident.Owner, error) {
	joints, err := s.store.JointOwners(ctx, patients, limit)
	if err != nil {
		return nil, err
	}
	for j, m := range joints {
		slices.Sort(m)
		ok, err := s.checkMembers(j, m)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, jointTampered(j)
		}
	}
	return joints, nil
}

// jointTampered is the 500 of a joint owner whose rows were altered.
func jointTampered(owner ident.Owner) *Error {
	return &Error{Kind: ErrTampered,
		Issues: []Issue{{Code: "exception", Diagnostic: "a stored record failed its integrity check"}},
		Err:    fmt.Errorf("%w: %s: %w", ErrTampered, owner, errJointRows)}
}

// checkMembers reports whether members (as recorded) are the patients
// the joint owner's name commits to.
func (s *Service) checkMembers(owner ident.Owner, members []ident.Owner) (bool, error) {
	if len(members) < 2 || !slices.IsSorted(members) {
		return false, nil
	}
	name, err := s.jointName(members)
	if err != nil {
		return false, err
	}
	return name == owner, nil
}

func (s *Service) rememberMembers(owner ident.Owner, members []ident.Owner) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.members == nil || len(s.members) >= maxMemberCache {
		s.members = make(map[ident.Owner][]ident.Owner)
	}
	s.members[owner] = members
}

// memberReader reads a joint owner's patients: the store, or a write
// transaction (which must not wait for a second connection).
type memberReader interface {
	JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error)
}

// patientsOf returns the patients owner stands for: none for "org", the
// patient for "Patient/<id>", the recorded patients of a joint owner
// (read through rd when not cached; nil rd means the store).
func (s *Service) patientsOf(ctx context.Context, rd memberReader, owner ident.Owner) ([]ident.Owner, error) {
	switch {
	case owner == OrgOwner || owner == "":
		return nil, nil
	case strings.HasPrefix(string(owner), ident.PatientPrefix):
		return []ident.Owner{owner}, nil
	case !strings.HasPrefix(string(owner), JointPrefix):
		return nil, fmt.Errorf("unknown owner kind %q", owner)
	}
	s.keyMu.Lock()
	m, ok := s.members[owner]
	s.keyMu.Unlock()
	if ok {
		return m, nil
	}
	if rd == nil {
		rd = s.store
	}
	m, err := rd.JointMembers(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("loading the patients of a joint owner: %w", err)
	}
	slices.Sort(m)
	// The rows must be the patients the owner's name commits to: a row
	// deleted in the database would otherwise leave that patient out
	// of every decision about the resource (fail closed).
	ok, err = s.checkMembers(owner, m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, jointTampered(owner)
	}
	s.rememberMembers(owner, m)
	return m, nil
}

// ownerReader reads what ownership depends on: the current version of
// a resource and a joint owner's patients (the store, or a write
// transaction).
type ownerReader interface {
	Current(ctx context.Context, typ, id string) (storage.Version, error)
	JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error)
}

// securityContextPatients returns the ids of the patients owning the
// resource a Binary's securityContext names. A securityContext that
// names no stored resource, or an unreadable one, is refused: the
// Binary's content would belong to nobody.
func (s *Service) securityContextPatients(ctx context.Context, rd ownerReader, res fhir.Resource) ([]string, error) {
	sc, ok := res["securityContext"].(map[string]any)
	if !ok {
		return nil, nil
	}
	ref, _ := sc["reference"].(string)
	if ref == "" {
		return nil, nil
	}
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || typ == "" || id == "" || strings.ContainsAny(id, "/?#") || !ValidID(id) || !fhir.IsR4Type(typ) {
		return nil, fail(ErrUnprocessable, "business-rule",
			"Binary.securityContext must be a literal reference (Type/id) to a stored resource")
	}
	if typ == "Patient" {
		return []string{id}, nil // PatientsOf found it already
	}
	if rd == nil {
		rd = s.store
	}
	v, err := rd.Current(ctx, typ, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(ErrUnprocessable, "business-rule",
			"Binary.securityContext names a resource that does not exist; store that resource first")
	}
	if err != nil {
		return nil, err
	}
	members, err := s.patientsOf(ctx, rd, v.Owner)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		out = append(out, strings.TrimPrefix(string(m), ident.PatientPrefix))
	}
	return out, nil
}

// mergeIDs returns the sorted union of two id lists.
func mergeIDs(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// ownerStrings returns owners as the strings that audit events and
// authorization (authz) name them by; nil stays nil.
func ownerStrings(owners []ident.Owner) []string {
	if owners == nil {
		return nil
	}
	out := make([]string, len(owners))
	for i, o := range owners {
		out[i] = string(o)
	}
	return out
}

// asOwners returns owner strings from authorization (authz.Filter) as
// owners; nil stays nil.
func asOwners(owners []string) []ident.Owner {
	if owners == nil {
		return nil
	}
	out := make([]ident.Owner, len(owners))
	for i, o := range owners {
		out[i] = ident.Owner(o)
	}
	return out
}
