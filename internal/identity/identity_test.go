package identity_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/identity"
)

func valid() identity.User {
	return identity.User{ID: "usr_1", Username: "nurse.jo", DisplayName: "Jo Nurse", Roles: []identity.Role{identity.RoleNurse}}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(u *identity.User)
		field string // "" = valid
	}{
		{"workforce", func(u *identity.User) {}, ""},
		{"practitioner link", func(u *identity.User) { u.FHIRUser = "Practitioner/pr-1.a" }, ""},
		{"email username", func(u *identity.User) { u.Username = "jo_n-1@clinic.example" }, ""},
		{"min username", func(u *identity.User) { u.Username = "abc" }, ""},
		{"max username", func(u *identity.User) { u.Username = strings.Repeat("a", 64) }, ""},
		{"patient", func(u *identity.User) {
			u.Roles = []identity.Role{identity.RolePatient}
			u.DisplayName = ""
			u.FHIRUser = "Patient/p1"
		}, ""},
		{"system", func(u *identity.User) { u.Roles = []identity.Role{identity.RoleSystem} }, ""},
		{"short username", func(u *identity.User) { u.Username = "ab" }, "username"},
		{"long username", func(u *identity.User) { u.Username = strings.Repeat("a", 65) }, "username"},
		{"upper case", func(u *identity.User) { u.Username = "Nurse.jo" }, "username"},
		{"space", func(u *identity.User) { u.Username = "nurse jo" }, "username"},
		{"unicode look-alike", func(u *identity.User) { u.Username = "nurse.jо" }, "username"}, // Cyrillic о
		{"empty id", func(u *identity.User) { u.ID = "" }, "id"},
		{"id with slash", func(u *identity.User) { u.ID = "a/b" }, "id"},
		{"no roles, awaiting approval", func(u *identity.User) { u.Roles = nil }, ""},
		{"no roles, patient link", func(u *identity.User) { u.Roles, u.DisplayName, u.FHIRUser = nil, "", "Patient/p1" }, ""},
		{"no roles, patient link, named", func(u *identity.User) { u.Roles, u.FHIRUser = nil, "Patient/p1" }, "display_name"},
		{"unknown role", func(u *identity.User) { u.Roles = []identity.Role{"admin"} }, "roles"},
		{"repeated role", func(u *identity.User) { u.Roles = []identity.Role{identity.RoleNurse, identity.RoleNurse} }, "roles"},
		{"patient and nurse", func(u *identity.User) {
			u.Roles = []identity.Role{identity.RolePatient, identity.RoleNurse}
			u.DisplayName = ""
			u.FHIRUser = "Patient/p1"
		}, "roles"},
		{"patient named", func(u *identity.User) {
			u.Roles = []identity.Role{identity.RolePatient}
			u.FHIRUser = "Patient/p1"
		}, "display_name"},
		{"patient unlinked", func(u *identity.User) {
			u.Roles = []identity.Role{identity.RolePatient}
			u.DisplayName = ""
		}, "fhir_user"},
		{"patient linked to practitioner", func(u *identity.User) {
			u.Roles = []identity.Role{identity.RolePatient}
			u.DisplayName = ""
			u.FHIRUser = "Practitioner/p1"
		}, "fhir_user"},
		{"nurse linked to patient", func(u *identity.User) { u.FHIRUser = "Patient/p1" }, "fhir_user"},
		{"bad reference", func(u *identity.User) { u.FHIRUser = "Practitioner/" }, "fhir_user"},
		{"bad reference id", func(u *identity.User) { u.FHIRUser = "Practitioner/a_b" }, "fhir_user"},
		{"control in name", func(u *identity.User) { u.DisplayName = "Jo\nNurse" }, "display_name"},
		{"long name", func(u *identity.User) { u.DisplayName = strings.Repeat("é", 129) }, "display_name"},
		{"invalid utf-8 name", func(u *identity.User) { u.DisplayName = "\xff" }, "display_name"},
		{"hash with space", func(u *identity.User) { u.PasswordHash = "$argon2id$ x" }, "password_hash"},
		{"long hash", func(u *identity.User) { u.PasswordHash = strings.Repeat("a", 513) }, "password_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := valid()
			tc.edit(&u)
			err := u.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var fe *identity.FieldError
			if !errors.Is(err, identity.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate: %v, want ErrInvalid naming %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name the field", err)
			}
			for _, v := range []string{u.Username, u.DisplayName, u.PasswordHash} {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q quotes a field value", err)
				}
			}
		})
	}
}

func TestRoles(t *testing.T) {
	want := map[identity.Role]bool{
		"physician": true, "nurse": true, "front-desk": true, "billing": true, "researcher": true,
		"privacy-officer": true, "security-admin": true, "auditor": true, "patient": false, "system": false,
	}
	if got := identity.Roles(); len(got) != len(want) {
		t.Fatalf("Roles() = %v, want %d roles", got, len(want))
	}
	for _, r := range identity.Roles() {
		workforce, ok := want[r]
		if !ok {
			t.Errorf("unexpected role %q", r)
			continue
		}
		if r.Workforce() != workforce {
			t.Errorf("%s.Workforce() = %v, want %v", r, r.Workforce(), workforce)
		}
		got, err := identity.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "Physician", "front desk", "root", "nurse,billing"} {
		if _, err := identity.ParseRole(bad); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("ParseRole(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if identity.Role("root").Workforce() {
		t.Error("an unknown role counts as workforce")
	}
	rs := []identity.Role{identity.RoleAuditor, identity.RoleBilling}
	back, err := identity.ParseRoles(identity.FormatRoles(rs))
	if err != nil || fmt.Sprint(back) != fmt.Sprint(rs) {
		t.Errorf("ParseRoles(FormatRoles(%v)) = %v, %v", rs, back, err)
	}
}

func TestRequiresMFA(t *testing.T) {
	for _, tc := range []struct {
		roles []identity.Role
		want  bool
	}{
		{[]identity.Role{identity.RolePatient}, false},
		{[]identity.Role{identity.RoleSystem}, false},
		{[]identity.Role{identity.RoleSystem, identity.RoleAuditor}, true},
		{[]identity.Role{identity.RoleFrontDesk}, true},
		{nil, true}, // a workforce account awaiting approval enrols meanwhile
	} {
		if got := (identity.User{Roles: tc.roles}).RequiresMFA(); got != tc.want {
			t.Errorf("RequiresMFA(%v) = %v, want %v", tc.roles, got, tc.want)
		}
	}
}

func TestRequiresMFAPendingPatient(t *testing.T) {
	if (identity.User{FHIRUser: "Patient/p1"}).RequiresMFA() {
		t.Error("a patient account awaiting approval must not owe a second factor")
	}
}

func TestLogValueHidesCredentials(t *testing.T) {
	u := valid()
	u.PasswordHash = "$argon2id$v=19$secret-hash"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "user", u)
	out := buf.String()
	for _, leak := range []string{"secret-hash", "Jo Nurse"} {
		if strings.Contains(out, leak) {
			t.Errorf("log line %s contains %q", out, leak)
		}
	}
	if !strings.Contains(out, "nurse.jo") {
		t.Errorf("log line %s lacks the username", out)
	}
}

func TestNewID(t *testing.T) {
	a, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := identity.NewID(nil)
	if a == b || !strings.HasPrefix(a, "usr_") || len(a) != 36 {
		t.Errorf("NewID = %q, %q", a, b)
	}
	u := valid()
	u.ID = a
	if err := u.Validate(); err != nil {
		t.Errorf("a NewID id does not validate: %v", err)
	}
	if _, err := identity.NewID(strings.NewReader("short")); err == nil {
		t.Error("NewID accepted a short random source")
	}
}

func FuzzValidateUsername(f *testing.F) {
	for _, s := range []string{"abc", "nurse.jo@x", "AB", "\x00\xff", strings.Repeat("z", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := identity.ValidateUsername(s)
		if err == nil && (len(s) < 3 || len(s) > 64 || strings.ToLower(s) != s || strings.ContainsAny(s, " /\x00")) {
			t.Fatalf("accepted %q", s)
		}
		if err != nil && !errors.Is(err, identity.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
