package storagetest

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
)

// UserStore is every identity capability one database offers.
type UserStore interface {
	identity.Directory
	identity.Admin
	identity.Credentials
}

// IdentityStores is one fresh, migrated database seen through the
// identity and session stores, plus a raw handle on the same database
// for the checks of what is at rest. The opener registers every Close
// with t.Cleanup.
type IdentityStores struct {
	Users    UserStore
	Sessions session.Store
	// Accounts and Revoker are the store's unit of work seen through the
	// account and session domains' transactions (ADR 0024).
	Accounts account.Store
	Revoker  session.Updater
	DB       *sql.DB
}

// RunIdentity runs the identity and session conformance suite, each
// case on a database of its own.
func RunIdentity(t *testing.T, open func(t *testing.T) IdentityStores) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s IdentityStores)
	}{
		{"CreateAndLookup", testUserCreate},
		{"DuplicateUser", testUserDuplicate},
		{"InvalidUserNotStored", testUserInvalid},
		{"UserNotFound", testUserNotFound},
		{"ListPaging", testUserList},
		{"RolesRoundTrip", testUserRoles},
		{"DisablePasswordMFA", testUserFlags},
		{"FHIRUserOneEnabledAccount", testFHIRUserUnique},
		{"FHIRUserRace", testFHIRUserRace},
		{"SessionCreateValidate", testSessionValidate},
		{"SessionUnknownUser", testSessionUnknownUser},
		{"SessionTouchBounded", testSessionTouch},
		{"SessionIdleExpiry", testSessionIdle},
		{"SessionAbsoluteExpiry", testSessionAbsolute},
		{"SessionRevoke", testSessionRevoke},
		{"SessionRevokeAll", testSessionRevokeAll},
		{"SessionTokenHashOnly", testSessionHashOnly},
		{"AccountApplyAtomic", testAccountApplyAtomic},
		{"AccountCreateAtomic", testAccountCreateAtomic},
		{"SessionRevokeAudited", testSessionRevokeAudited},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t))
		})
	}
}

// newUser returns a valid workforce user named username.
func newUser(t *testing.T, username string, roles ...identity.Role) identity.User {
	t.Helper()
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) == 0 {
		roles = []identity.Role{identity.RoleNurse}
	}
	return identity.User{ID: id, Username: username, DisplayName: "Nurse " + username, Roles: roles}
}

func mustCreate(t *testing.T, s IdentityStores, u identity.User) identity.User {
	t.Helper()
	got, err := s.Users.Create(t.Context(), u)
	if err != nil {
		t.Fatalf("create %s: %v", u.Username, err)
	}
	return got
}

func testUserCreate(t *testing.T, s IdentityStores) {
	u := newUser(t, "dr.grey@example.org", identity.RolePhysician, identity.RoleResearcher)
	u.FHIRUser = "Practitioner/pr-1"
	u.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
	created := mustCreate(t, s, u)
	if created.Created.IsZero() || !created.Updated.Equal(created.Created) {
		t.Errorf("created %v updated %v: want set and equal", created.Created, created.Updated)
	}
	byID, err := s.Users.ByID(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byID, created) {
		t.Errorf("ByID = %+v\nwant  %+v", byID, created)
	}
	byName, err := s.Users.ByUsername(t.Context(), u.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byName, created) {
		t.Errorf("ByUsername = %+v\nwant       %+v", byName, created)
	}

	p := identity.User{ID: "pat-1", Username: "patient-7", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/abc"}
	gotP := mustCreate(t, s, p)
	if back, err := s.Users.ByID(t.Context(), "pat-1"); err != nil || !reflect.DeepEqual(back, gotP) || back.DisplayName != "" {
		t.Errorf("patient account = %+v, %v; want %+v", back, err, gotP)
	}
}

func testUserDuplicate(t *testing.T, s IdentityStores) {
	first := mustCreate(t, s, newUser(t, "alice"))
	for _, tc := range []struct {
		name string
		u    identity.User
	}{
		{"same username", newUser(t, "alice", identity.RoleBilling)},
		{"same id", func() identity.User { u := newUser(t, "alice2"); u.ID = first.ID; return u }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Users.Create(t.Context(), tc.u)
			if !errors.Is(err, identity.ErrExists) || !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("Create: %v, want identity.ErrExists and storage.ErrConflict", err)
			}
			got, err := s.Users.ByUsername(t.Context(), "alice")
			if err != nil || !reflect.DeepEqual(got, first) {
				t.Errorf("original changed: %+v, %v", got, err)
			}
		})
	}
}

func testUserInvalid(t *testing.T, s IdentityStores) {
	for _, tc := range []struct {
		name, field string
		u           identity.User
	}{
		{"patient with a name", "display_name", identity.User{ID: "p1", Username: "pat-one", DisplayName: "Jane Roe", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/1"}},
		{"upper-case username", "username", identity.User{ID: "u1", Username: "Alice", Roles: []identity.Role{identity.RoleNurse}}},
		{"unknown role", "roles", identity.User{ID: "u3", Username: "carol", Roles: []identity.Role{"root"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Users.Create(t.Context(), tc.u)
			var fe *identity.FieldError
			if !errors.Is(err, identity.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Create: %v, want ErrInvalid naming %s", err, tc.field)
			}
			if _, err := s.Users.ByID(t.Context(), tc.u.ID); !errors.Is(err, identity.ErrNotFound) {
				t.Errorf("invalid user was stored: ByID: %v", err)
			}
		})
	}
}

func testUserNotFound(t *testing.T, s IdentityStores) {
	mustCreate(t, s, newUser(t, "dave"))
	ctx := t.Context()
	for _, key := range []string{"nobody", "", "x\x00y", "\xff\xfe", strings.Repeat("a", 10000), "' OR 1=1 --"} {
		if _, err := s.Users.ByID(ctx, key); !errors.Is(err, identity.ErrNotFound) || !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ByID(%q...): %v, want ErrNotFound", trunc(key), err)
		}
		if _, err := s.Users.ByUsername(ctx, key); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("ByUsername(%q...): %v, want ErrNotFound", trunc(key), err)
		}
		if _, err := s.Users.SetDisabled(ctx, key, true); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("SetDisabled(%q...): %v, want ErrNotFound", trunc(key), err)
		}
	}
}

func trunc(s string) string { return s[:min(len(s), 16)] }

func testUserList(t *testing.T, s IdentityStores) {
	const n = 11
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("user%02d", i)
	}
	shuffled := append([]string(nil), names...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, name := range shuffled {
		mustCreate(t, s, newUser(t, name))
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not terminate")
		}
		page, err := s.Users.List(t.Context(), after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 4 {
			t.Fatalf("page of %d users, limit 4", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			got = append(got, u.Username)
		}
		after = page[len(page)-1].Username
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("paged usernames %v, want %v", got, names)
	}
	for _, limit := range []int{0, -1, identity.MaxPage + 1} {
		if _, err := s.Users.List(t.Context(), "", limit); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("List limit %d: %v, want ErrInvalid", limit, err)
		}
	}
}

func testUserRoles(t *testing.T, s IdentityStores) {
	all := identity.Roles()
	var workforce []identity.Role
	for _, r := range all {
		if r != identity.RolePatient {
			workforce = append(workforce, r)
		}
	}
	// Every non-patient role at once, in a non-sorted order.
	u := newUser(t, "everything", workforce[3], workforce[0], workforce[8], workforce[1])
	mustCreate(t, s, u)
	got, err := s.Users.ByID(t.Context(), u.ID)
	if err != nil || !reflect.DeepEqual(got.Roles, u.Roles) {
		t.Fatalf("roles %v, %v; want %v", got.Roles, err, u.Roles)
	}
	changed, err := s.Users.SetRoles(t.Context(), u.ID, workforce)
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Users.ByID(t.Context(), u.ID)
	if err != nil || !reflect.DeepEqual(got.Roles, workforce) || !reflect.DeepEqual(got, changed) {
		t.Fatalf("after SetRoles: %+v, %v; want roles %v and %+v", got, err, workforce, changed)
	}
	if got.Updated.Before(got.Created) {
		t.Errorf("updated %v before created %v", got.Updated, got.Created)
	}
	// Making a named workforce account a patient would put a name next
	// to a patient identity: refused, nothing changes.
	if _, err := s.Users.SetRoles(t.Context(), u.ID, []identity.Role{identity.RolePatient}); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("SetRoles patient on a named account: %v, want ErrInvalid", err)
	}
	// No role at all is an account awaiting approval (ADR 0018): valid.
	if _, err := s.Users.SetRoles(t.Context(), u.ID, nil); err != nil {
		t.Errorf("SetRoles none: %v, want an account with no access", err)
	}
	if _, err := s.Users.SetRoles(t.Context(), u.ID, got.Roles); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Users.ByID(t.Context(), u.ID)
	if again, _ := s.Users.ByID(t.Context(), u.ID); !reflect.DeepEqual(again, got) {
		t.Errorf("refused SetRoles changed the user: %+v", again)
	}
}

func testUserFlags(t *testing.T, s IdentityStores) {
	u := mustCreate(t, s, newUser(t, "erin", identity.RoleSecurityAdmin))
	other := mustCreate(t, s, newUser(t, "frank"))
	ctx := t.Context()
	steps := []struct {
		name  string
		do    func() (identity.User, error)
		check func(identity.User) bool
	}{
		{"disable", func() (identity.User, error) { return s.Users.SetDisabled(ctx, u.ID, true) }, func(x identity.User) bool { return x.Disabled }},
		{"password", func() (identity.User, error) { return s.Users.SetPassword(ctx, u.ID, "$argon2id$v=19$new") }, func(x identity.User) bool { return x.PasswordHash == "$argon2id$v=19$new" && x.Disabled }},
		{"mfa on", func() (identity.User, error) { return s.Users.SetMFA(ctx, u.ID, true) }, func(x identity.User) bool { return x.MFAEnrolled }},
		{"enable", func() (identity.User, error) { return s.Users.SetDisabled(ctx, u.ID, false) }, func(x identity.User) bool { return !x.Disabled && x.MFAEnrolled }},
		{"mfa reset", func() (identity.User, error) { return s.Users.SetMFA(ctx, u.ID, false) }, func(x identity.User) bool { return !x.MFAEnrolled }},
		{"password removed", func() (identity.User, error) { return s.Users.SetPassword(ctx, u.ID, "") }, func(x identity.User) bool { return x.PasswordHash == "" }},
	}
	for _, st := range steps {
		ret, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.Users.ByID(ctx, u.ID)
		if err != nil || !reflect.DeepEqual(got, ret) || !st.check(got) {
			t.Fatalf("%s: stored %+v (%v), returned %+v", st.name, got, err, ret)
		}
	}
	if _, err := s.Users.SetPassword(ctx, u.ID, "has space"); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("SetPassword with a non-PHC value: %v, want ErrInvalid", err)
	}
	if got, _ := s.Users.ByID(ctx, other.ID); !reflect.DeepEqual(got, other) {
		t.Errorf("another user changed: %+v", got)
	}
}
