package identity_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/identity"
)

// TestNeedsApproval pins the roles that reach PHI (docs/authorization.md,
// "Separation of duties"): a change of this list is a change of policy.
func TestNeedsApproval(t *testing.T) {
	phi := map[identity.Role]bool{
		identity.RolePhysician: true, identity.RoleNurse: true, identity.RoleFrontDesk: true, identity.RoleBilling: true,
		identity.RolePrivacyOfficer: true, identity.RoleAuditor: true, identity.RolePatient: true, identity.RoleSystem: true,
	}
	for _, r := range identity.Roles() {
		if r.ReachesPHI() != phi[r] {
			t.Errorf("%s.ReachesPHI() = %v, want %v", r, r.ReachesPHI(), phi[r])
		}
		want := phi[r] || r == identity.RoleSecurityAdmin
		if r.NeedsApproval() != want {
			t.Errorf("%s.NeedsApproval() = %v, want %v", r, r.NeedsApproval(), want)
		}
	}
	if identity.Role("root").NeedsApproval() {
		// Unknown roles never validate; the answer only has to be safe.
		t.Log("an unknown role needs no approval (it cannot be stored)")
	}
}

func TestSplit(t *testing.T) {
	R := func(rs ...identity.Role) []identity.Role { return rs }
	for _, tc := range []struct {
		cur, target, now []identity.Role
		pending          bool
	}{
		{R(), R(identity.RoleResearcher), R(identity.RoleResearcher), false},
		{R(), R(identity.RolePhysician), R(), true},
		{R(identity.RoleResearcher), R(identity.RoleResearcher, identity.RoleNurse), R(identity.RoleResearcher), true},
		{R(identity.RoleNurse, identity.RoleAuditor), R(identity.RoleNurse), R(identity.RoleNurse), false},
		{R(identity.RoleNurse), R(identity.RoleResearcher), R(identity.RoleResearcher), false},
		{R(identity.RoleAuditor), R(identity.RoleSecurityAdmin, identity.RoleAuditor), R(identity.RoleAuditor), true},
		{R(identity.RoleNurse), R(identity.RoleNurse), R(identity.RoleNurse), false},
	} {
		now, pending := identity.Split(tc.cur, tc.target)
		if fmt.Sprint(now) != fmt.Sprint(tc.now) || pending != tc.pending {
			t.Errorf("Split(%v, %v) = %v, %v; want %v, %v", tc.cur, tc.target, now, pending, tc.now, tc.pending)
		}
	}
}

func TestRequestMayDecide(t *testing.T) {
	r := identity.Request{ID: "rqs_1", UserID: "usr_target", RequestedBy: "usr_admin1",
		Roles: []identity.Role{identity.RoleNurse, identity.RoleResearcher}, BaseRoles: []identity.Role{identity.RoleResearcher}}
	for _, who := range []string{"", "usr_admin1", "usr_target"} {
		if err := r.MayDecide(who); !errors.Is(err, identity.ErrSelf) {
			t.Errorf("MayDecide(%q) = %v, want ErrSelf", who, err)
		}
	}
	if err := r.MayDecide("usr_admin2"); err != nil {
		t.Errorf("a second administrator may decide: %v", err)
	}
	if got := r.Adds(); len(got) != 1 || got[0] != identity.RoleNurse {
		t.Errorf("Adds() = %v, want [nurse]", got)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Expires = now.Add(identity.RequestTTL)
	if r.Expired(now) || !r.Expired(r.Expires) {
		t.Error("Expired does not end at Expires")
	}
	id, err := identity.NewRequestID(nil)
	if err != nil || !strings.HasPrefix(id, "rqs_") || len(id) != 36 {
		t.Errorf("NewRequestID = %q, %v", id, err)
	}
}
