package record

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
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

// ownerOf returns the key owner of res and the patients it names.
func (s *Service) ownerOf(res fhir.Resource) (owner string, patients []string, err error) {
	ps := s.reg.PatientsOf(res)
	switch {
	case len(ps) == 0:
		return OrgOwner, nil, nil
	case len(ps) == 1:
		return "Patient/" + ps[0], []string{"Patient/" + ps[0]}, nil
	case len(ps) > MaxPatientsPerResource:
		return "", nil, fail(http.StatusUnprocessableEntity, ErrUnprocessable, "too-costly",
			fmt.Sprintf("the resource names more than %d patients", MaxPatientsPerResource))
	}
	refs := make([]string, len(ps))
	for i, p := range ps {
		refs[i] = "Patient/" + p
	}
	h, err := s.keys.BlindIndex("joint-owner\x00" + strings.Join(refs, "\x00"))
	if err != nil {
		return "", nil, fmt.Errorf("naming a joint owner: %w", err)
	}
	owner = JointPrefix + hex.EncodeToString(h)
	s.rememberMembers(owner, refs)
	return owner, refs, nil
}

func (s *Service) rememberMembers(owner string, members []string) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.members == nil || len(s.members) >= maxMemberCache {
		s.members = make(map[string][]string)
	}
	s.members[owner] = members
}

// memberReader reads a joint owner's patients: the store, or a write
// transaction (which must not wait for a second connection).
type memberReader interface {
	JointMembers(ctx context.Context, owner string) ([]string, error)
}

// patientsOf returns the patients owner stands for: none for "org", the
// patient for "Patient/<id>", the recorded patients of a joint owner
// (read through rd when not cached; nil rd means the store).
func (s *Service) patientsOf(ctx context.Context, rd memberReader, owner string) ([]string, error) {
	switch {
	case owner == OrgOwner || owner == "":
		return nil, nil
	case strings.HasPrefix(owner, "Patient/"):
		return []string{owner}, nil
	case !strings.HasPrefix(owner, JointPrefix):
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
	s.rememberMembers(owner, m)
	return m, nil
}

// cachedPatients returns the patients of owner for an audit event. The
// decision on the same version loaded them (check), so the cache holds
// a joint owner's; a miss reads the store.
func (s *Service) cachedPatients(ctx context.Context, owner string) ([]string, error) {
	return s.patientsOf(ctx, nil, owner)
}
