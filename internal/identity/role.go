package identity

import (
	"slices"
	"strings"
)

// Role is one of the default roles of DESIGN §8. Authorization policy
// (Cedar) decides what each role may do; this package only names them.
type Role string

// The default roles.
const (
	RolePhysician      Role = "physician"
	RoleNurse          Role = "nurse"
	RoleFrontDesk      Role = "front-desk"
	RoleBilling        Role = "billing"
	RoleResearcher     Role = "researcher"
	RolePrivacyOfficer Role = "privacy-officer"
	RoleSecurityAdmin  Role = "security-admin"
	RoleAuditor        Role = "auditor"
	RolePatient        Role = "patient"
	RoleSystem         Role = "system"
)

// Roles lists every role, in the order above. It returns a new slice.
func Roles() []Role {
	return []Role{
		RolePhysician, RoleNurse, RoleFrontDesk, RoleBilling, RoleResearcher,
		RolePrivacyOfficer, RoleSecurityAdmin, RoleAuditor, RolePatient, RoleSystem,
	}
}

// ParseRole returns the role named s (exactly, lower case), or an error
// wrapping [ErrInvalid]. The input is not echoed.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles(), r) {
		return "", &FieldError{Field: "roles", Reason: "unknown role"}
	}
	return r, nil
}

// ParseRoles parses a comma-separated list of roles, as stored.
func ParseRoles(s string) ([]Role, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]Role, 0, len(parts))
	for _, p := range parts {
		r, err := ParseRole(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// FormatRoles joins roles with commas, the stored form ParseRoles reads.
func FormatRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// Workforce reports whether r is a workforce role: every role but
// patient and system. Workforce accounts must use a second factor
// (DESIGN §7: MFA for every workforce role; HIPAA §164.312(d) person or
// entity authentication). Patients authenticate to see only their own
// record; system is a service client that authenticates with a key, not
// a person.
func (r Role) Workforce() bool {
	switch r {
	case RolePatient, RoleSystem:
		return false
	}
	return slices.Contains(Roles(), r)
}

// String returns the role name.
func (r Role) String() string { return string(r) }
