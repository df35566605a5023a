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

func FuzzParsePolicies(f *testing.F) {
	f.Add(DefaultFiles()["default.cedar"])
	f.Add([]byte(`@id("a") permit (principal, action, resource) when { resource.type == "Patient" };`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicies("fuzz", map[string][]byte{"f.cedar": b})
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		if len(p.IDs()) == 0 || len(p.Hash()) != 64 {
			t.Fatalf("accepted a set with %d ids, hash %q", len(p.IDs()), p.Hash())
		}
	})
}

func TestPolicyHashVersionsContent(t *testing.T) {
	a, err := ParsePolicies("x", map[string][]byte{"a.cedar": []byte(`@id("a") permit (principal, action, resource);`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParsePolicies("y", map[string][]byte{"a.cedar": []byte(`@id("a") permit (principal, action, resource);`)})
	c, _ := ParsePolicies("x", map[string][]byte{"b.cedar": []byte(`@id("a") permit (principal, action, resource);`)})
	if a.Hash() != b.Hash() || a.Hash() == c.Hash() {
		t.Fatal("the hash must depend on file names and contents, not on the source label")
	}
}
