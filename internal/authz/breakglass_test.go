package authz

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseBreakGlass(t *testing.T) {
	ok := `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"},{"name":"text","valueString":"cardiac arrest"}]}`
	if r, err := ParseBreakGlass([]byte(ok)); err != nil || r.Reason != "ETREAT" || r.Text != "cardiac arrest" {
		t.Fatalf("ParseBreakGlass = %+v, %v", r, err)
	}
	secret := "SECRET-PHI-VALUE"
	for name, body := range map[string]string{
		"not parameters": `{"resourceType":"Patient"}`,
		"no reason":      `{"resourceType":"Parameters","parameter":[{"name":"text","valueString":"x"}]}`,
		"bad reason":     `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"` + secret + `"},{"name":"text","valueString":"x"}]}`,
		"no text":        `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"}]}`,
		"blank text":     `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"},{"name":"text","valueString":"  "}]}`,
		"long text":      `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"},{"name":"text","valueString":"` + strings.Repeat("x", maxReasonText+1) + `"}]}`,
		"control":        `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"},{"name":"text","valueString":"a\u0000b"}]}`,
		"unknown param":  `{"resourceType":"Parameters","parameter":[{"name":"` + secret + `","valueCode":"ETREAT"}]}`,
		"repeated":       `{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"ETREAT"},{"name":"reason","valueCode":"BTG"}]}`,
	} {
		_, err := ParseBreakGlass([]byte(body))
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: err = %v, want ErrBadRequest", name, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q echoes the input", name, err)
		}
	}
}

func FuzzParseBreakGlass(f *testing.F) {
	seeds(f, "breakglass-*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseBreakGlass(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if r.Text == "" || len([]rune(r.Text)) > maxReasonText {
			t.Fatalf("accepted text of %d runes", len([]rune(r.Text)))
		}
	})
}

func TestRedact(t *testing.T) {
	in := []byte(`{"resourceType":"Patient","id":"p1","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-99-9999"},{"type":{"coding":[{"code":"DL"}]},"value":"D123"},{"type":{"coding":[{"code":"MR"}]},"value":"MRN1"}]}`)
	out, err := Redact(in)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "999-99-9999") || strings.Contains(s, "D123") || !strings.Contains(s, "MRN1") {
		t.Fatalf("Redact = %s", s)
	}
	var res map[string]any
	_ = json.Unmarshal(out, &res)
	sec := res["meta"].(map[string]any)["security"].([]any)
	if c := sec[len(sec)-1].(map[string]any); c["code"] != "REDACTED" || c["system"] != SecuritySystem {
		t.Fatalf("meta.security = %v", sec)
	}
	plain := []byte(`{"resourceType":"Patient","id":"p2"}`)
	if out, _ := Redact(plain); string(out) != string(plain) {
		t.Fatalf("Redact changed a resource without identifiers: %s", out)
	}
}

func TestResourceLabels(t *testing.T) {
	l, c, err := ResourceLabels([]byte(`{"meta":{"security":[{"code":"PSY"},{"code":"R"}],"tag":[{"code":"VIP"}]},"category":[{"coding":[{"code":"laboratory"}]}]}`), false)
	if err != nil || strings.Join(l, ",") != "PSY,R" || strings.Join(c, ",") != "laboratory" {
		t.Fatalf("ResourceLabels = %v %v %v", l, c, err)
	}
	l, _, _ = ResourceLabels([]byte(`{"meta":{"security":[{"code":"PSY"}],"tag":[{"code":"VIP"}]},"category":{"coding":[{"code":"x"}]}}`), true)
	if strings.Join(l, ",") != "PSY,VIP" {
		t.Fatalf("with tags: %v", l)
	}
}

func FuzzRedact(f *testing.F) {
	seeds(f, "patient-*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Redact(b)
		if err != nil {
			if !errors.Is(err, ErrUndecidable) {
				t.Fatalf("error %v does not wrap ErrUndecidable", err)
			}
			return
		}
		var res map[string]any
		if json.Unmarshal(out, &res) != nil {
			return // the input was valid JSON but not an object: returned unchanged
		}
		ids, _ := res["identifier"].([]any)
		for _, x := range ids {
			if id, _ := x.(map[string]any); sensitiveIdentifier(id) {
				t.Fatalf("a sensitive identifier survived: %v", id)
			}
		}
	})
}
