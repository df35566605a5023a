package record

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Joint owners are checked from authenticated data. A joint owner's
// name is a keyed hash of its patients (jointName), so joint_owners rows
// that were deleted, added or changed in the database no longer hash to
// it. Erasures (Erase) and "phivault verify" (CheckJointOwners) find the
// joint owners naming a patient from rows that match, and for a live
// owner whose rows do not, from a stored version: its plaintext names
// the patients, and the AEAD binds it to the owner.

// JointOwnerCheck is one joint owner as CheckJointOwners found it.
type JointOwnerCheck struct {
	storage.JointOwner
	// Problem says how the recorded patients differ from those the
	// owner's name commits to; "" when they are the same.
	Problem string
	// Patients are the patients the name commits to: the recorded ones
	// when they match; otherwise those a current version of the owner
	// names, or nil when none tells (no live version, or the key is
	// shredded).
	Patients []ident.Owner
}

// CheckJointOwners checks every joint owner's recorded patients against
// its name and calls fn for each (in no particular order). Errors are
// I/O (or fn's); differences are in the checks.
func (s *Service) CheckJointOwners(ctx context.Context, fn func(JointOwnerCheck) error) error {
	var bad []JointOwnerCheck
	err := s.store.ScanJointOwners(ctx, func(o storage.JointOwner) error {
		c := JointOwnerCheck{JointOwner: o}
		switch {
		case !strings.HasPrefix(string(o.Owner), JointPrefix):
			c.Problem = "a joint owner row under a name that is not a joint owner's"
		case !o.HasKey:
			c.Problem = "joint_owners rows for an owner that has no data key (rows added)"
		case len(o.Members) == 0:
			c.Problem = "the owner has a data key but joint_owners lists none of its patients (rows deleted)"
		default:
			ok, err := s.checkMembers(o.Owner, o.Members)
			if err != nil {
				return err
			}
			if ok {
				c.Patients = o.Members
				return fn(c)
			}
			c.Problem = "the patients joint_owners lists for this owner are not the ones its name commits to (a row deleted, added or changed)"
		}
		bad = append(bad, c)
		return nil
	})
	if err != nil {
		return err
	}
	// Recovered after the scan, which holds a connection.
	for _, c := range bad {
		if c.HasKey && !c.Shredded && strings.HasPrefix(string(c.Owner), JointPrefix) {
			ps, err := s.recoverJointPatients(ctx, c.Owner)
			if err != nil {
				return err
			}
			c.Patients = ps
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// recoverJointPatients returns the patients a current version of the
// joint owner names, when its plaintext (opened with the owner's key,
// which binds it to the owner) hashes to the owner; nil when no live
// version tells.
func (s *Service) recoverJointPatients(ctx context.Context, owner ident.Owner) ([]ident.Owner, error) {
	after := storage.VersionRef{}
	for range 10 {
		vs, err := s.store.Owned(ctx, []ident.Owner{owner}, after, 20)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			after = storage.VersionRef{Type: v.Type, ID: v.ID}
			body, err := s.open(ctx, v)
			if err != nil {
				if StatusCode(err) >= 500 && !errors.Is(err, ErrTampered) {
					return nil, err
				}
				continue // tampered or erased meanwhile: another may tell
			}
			res, err := s.Parse(body)
			if err != nil {
				continue
			}
			o, refs, err := s.ownerOf(ctx, nil, res)
			if err == nil && o == owner {
				return slices.Clone(refs), nil
			}
		}
		if len(vs) < 20 {
			break
		}
	}
	return nil, nil
}
