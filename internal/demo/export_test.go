package demo

import "github.com/phivault/phivault/internal/identity"

// TestUser is a demo account as the tests see it.
type TestUser struct {
	Username, Display string
	Role              identity.Role
}

// Users returns the workforce accounts and, last, the patient account.
func Users() []TestUser {
	var out []TestUser
	for _, u := range append(append([]demoUser(nil), demoWorkforce...), demoPatientUser) {
		out = append(out, TestUser{Username: u.username, Display: u.display, Role: u.role})
	}
	return out
}
