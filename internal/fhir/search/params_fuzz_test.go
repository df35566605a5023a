package search

import (
	"errors"
	"net/url"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// FuzzNumberQuery checks the number and quantity value parsers: no
// panic, every error wraps a sentinel and never echoes the value, and
// what is accepted is bounded.
func FuzzNumberQuery(f *testing.F) {
	for _, s := range []string{"5.4", "eq5.4", "ne0", "gt-1e-3", "lt1e18", "ge0.000001", "le-999999", "sa1", "eb1", "ap100",
		"5.4|http://unitsofmeasure.org|mg", "5.4||mg", "gt1|http://unitsofmeasure.org|mg/dL", "ap0|x|y", "1e-19", "-0.0", "5|a\\|b|c",
		"1e9999", "00.1", "1.", "--1", "eq", "5$6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, fn := range []func(string, string) ([]string, bool, error){numberKeys, quantityKeys} {
			keys, _, err := fn("p", v)
			if err != nil {
				if !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooComplex) {
					t.Fatalf("%q: error wraps no sentinel: %v", v, err)
				}
				if len(v) > 8 && containsValue(err.Error(), v) {
					t.Fatalf("%q: error echoes the value: %v", v, err)
				}
				continue
			}
			if len(keys) == 0 || len(keys) > maxNumKeys {
				t.Fatalf("%q: %d keys", v, len(keys))
			}
		}
	})
}

// FuzzNewParamsQuery drives ParseQuery with the new parameter types and
// modifiers.
func FuzzNewParamsQuery(f *testing.F) {
	for _, s := range []string{
		"value-quantity=gt5.4|http://unitsofmeasure.org|mg&code-value-quantity=http://loinc.org|1$lt5",
		"component-code-value-quantity=a$b&combo-code-value-quantity=x|y$ap1",
		"code-value-concept=a|b$c|d&code:text=Gluc&identifier:of-type=a|b|c&code:in=http://x/vs|1&code:not-in=y",
		"_tag=a|b&_security=R&_profile:below=http://x/y&_source=z&_text=x",
		"identifier:of-type=a\\|b|c|d&code=http://loinc.org|&value-concept:text=%00",
	} {
		f.Add("Observation", s)
		f.Add("ValueSet", "url:below="+s+"&url:above=http://a/b/c&version=1&name=n")
	}
	r, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		out, err := r.ParseQuery(typ, q, false)
		if err != nil {
			if !errors.Is(err, ErrUnknownParam) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrInvalidValue) &&
				!errors.Is(err, ErrTooComplex) && !errors.Is(err, fhir.ErrUnknownType) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		n := 0
		for _, p := range out.Preds {
			n += len(p.Terms)
			for _, pr := range p.Pairs {
				n += len(pr.First) + len(pr.Second)
				if len(pr.First) == 0 || len(pr.Second) == 0 {
					t.Fatalf("predicate %s with a one-sided pair", p.Param.Code)
				}
			}
			if p.ValueSet == "" && p.Missing == nil && len(p.Terms) == 0 && len(p.Pairs) == 0 && len(p.Dates) == 0 {
				t.Fatalf("predicate %s without terms", p.Param.Code)
			}
		}
		if n > MaxParams*MaxAlternatives*maxNumKeys {
			t.Fatalf("%d terms", n)
		}
	})
}

// FuzzQuantityExtract checks that extraction of number and quantity
// values from hostile resources never panics.
func FuzzQuantityExtract(f *testing.F) {
	for _, s := range []string{`95.0`, `-1e-30`, `1e40`, `0`, `"5"`, `null`, `[1]`, `{"a":1}`, `123456789012345678901234567890.5`} {
		f.Add(s, "mg/dL")
	}
	r, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value, unit string) {
		body := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"s","code":"c"}]},"valueQuantity":{"value":` + value +
			`,"system":"http://unitsofmeasure.org","code":` + jsonString(unit) + `},"component":[{"code":{"text":"x"},"valueQuantity":{"value":` + value + `}}]}`
		res, err := decodeMaybe(body)
		if err != nil {
			return
		}
		if _, err := r.Extract(res); err != nil && !errors.Is(err, errTooLargeSentinel()) {
			t.Fatalf("extract: %v", err)
		}
	})
}
