package ident

import "strings"

// Owner prefixes and the organisation's owner.
const (
	// PatientPrefix starts a patient's owner, which is also the patient's
	// reference: "Patient/<id>".
	PatientPrefix = "Patient/"
	// JointPrefix starts a joint owner, "Joint/<h>": the owner of a
	// resource naming several patients, keyed by a hash of their set
	// (ADR 0019).
	JointPrefix = "Joint/"
	// SystemPrefix starts the owner of a system key, "system/<name>": a
	// key the server uses itself (row authentication, tokens), never a
	// data-encryption key.
	SystemPrefix = "system/"

	// Org owns the data outside any patient's compartment.
	Org Owner = "org"
)

// Owner names the owner of a data-encryption key and of the data sealed
// under it: a patient, a joint owner, the organisation, or a system key.
type Owner string

// OwnerKind is the kind of an Owner.
type OwnerKind int

// The kinds of owner.
const (
	OwnerUnknown OwnerKind = iota // not an owner phivault writes
	OwnerPatient                  // "Patient/<id>"
	OwnerJoint                    // "Joint/<h>"
	OwnerOrg                      // "org"
	OwnerSystem                   // "system/<name>"
)

// PatientOwner returns the owner of patient id's compartment.
func PatientOwner(id string) Owner { return Owner(PatientPrefix + id) }

// JointOwner returns the joint owner with hash h (hex).
func JointOwner(h string) Owner { return Owner(JointPrefix + h) }

// SystemOwner returns the owner of the system key name.
func SystemOwner(name string) Owner { return Owner(SystemPrefix + name) }

// Kind returns the kind of o; OwnerUnknown for anything with an empty
// name after its prefix.
func (o Owner) Kind() OwnerKind {
	s := string(o)
	switch {
	case o == Org:
		return OwnerOrg
	case len(s) > len(PatientPrefix) && strings.HasPrefix(s, PatientPrefix):
		return OwnerPatient
	case len(s) > len(JointPrefix) && strings.HasPrefix(s, JointPrefix):
		return OwnerJoint
	case len(s) > len(SystemPrefix) && strings.HasPrefix(s, SystemPrefix):
		return OwnerSystem
	}
	return OwnerUnknown
}

// IsPatient reports whether o is a patient's owner.
func (o Owner) IsPatient() bool { return o.Kind() == OwnerPatient }

// IsJoint reports whether o is a joint owner.
func (o Owner) IsJoint() bool { return o.Kind() == OwnerJoint }

// IsSystem reports whether o names a system key.
func (o Owner) IsSystem() bool { return o.Kind() == OwnerSystem }

// PatientID returns the patient id of a patient's owner; ok is false for
// every other kind.
func (o Owner) PatientID() (id string, ok bool) {
	if !o.IsPatient() {
		return "", false
	}
	return string(o[len(PatientPrefix):]), true
}

// String returns the owner's name as stored.
func (o Owner) String() string { return string(o) }
