package authz

import (
	"errors"
	"testing"
)

func TestDefaultsValidate(t *testing.T) {
	p, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IDs()) < 10 || len(p.Hash()) != 64 {
		t.Fatalf("ids %v hash %q", p.IDs(), p.Hash())
	}
}

func TestParsePoliciesRejects(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"syntax", `permit (principal, action, resource`},
		{"no id", `permit (principal, action, resource);`},
		{"unknown attribute", `@id("x") permit (principal, action, resource) when { principal.salary > 3 };`},
		{"wrong type", `@id("x") permit (principal, action, resource) when { resource.type == 3 };`},
		{"unknown action", `@id("x") permit (principal, action == PhiVault::Action::"teleport", resource);`},
		{"duplicate id", `@id("x") permit (principal, action, resource); @id("x") forbid (principal, action, resource);`},
		{"empty", `// nothing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicies("test", map[string][]byte{"a.cedar": []byte(tc.text)})
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}
