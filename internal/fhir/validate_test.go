package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// validator is shared by the tests of this package: compiling costs ~1 s.
var (
	testValidatorOnce sync.Once
	testValidator     *Validator
)

func sharedValidator(t testing.TB) *Validator {
	t.Helper()
	testValidatorOnce.Do(func() { testValidator = NewValidator() })
	if err := testValidator.Compile(); err != nil {
		t.Fatal(err)
	}
	return testValidator
}

func mustDecode(t testing.TB, body string) Resource {
	t.Helper()
	res, err := Decode(strings.NewReader(body), Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return res
}

func TestValidateTestdata(t *testing.T) {
	v := sharedValidator(t)
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Decode(bytes.NewReader(b), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := v.Validate(res); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	v := sharedValidator(t)
	const obs = `"resourceType":"Observation","code":{"text":"x"}`
	tests := []struct {
		name     string
		body     string
		wantPath string
		wantMsg  string
		wantErr  error
	}{
		// The R4 JSON schema marks only complex elements required (a primitive
		// may be replaced by its _element extension); required primitives
		// such as Observation.status are checked in required_test.go.
		{"missing code", `{"resourceType":"Observation","status":"final"}`, "Observation.code", "required element is missing", ErrInvalid},
		{"bad status code", `{` + obs + `,"status":"Zyxwvut"}`, "Observation.status", "allowed codes", ErrInvalid},
		{"status wrong type", `{` + obs + `,"status":5}`, "Observation.status", "allowed codes", ErrInvalid},
		{"text wrong type", `{` + obs + `,"status":"final","issued":5}`, "Observation.issued", "wrong JSON type number, want string", ErrInvalid},
		{"unknown element", `{` + obs + `,"status":"final","colour":"red"}`, "Observation", "unknown element colour", ErrInvalid},
		{"unknown element with odd name", `{` + obs + `,"status":"final","Zy xw":"red"}`, "Observation", "unknown element ?", ErrInvalid},
		{"bad dateTime", `{` + obs + `,"status":"final","effectiveDateTime":"Zyxwvut"}`, "Observation.effectiveDateTime", "not a valid dateTime", ErrInvalid},
		{"decimal as string", `{` + obs + `,"status":"final","valueQuantity":{"value":"1.5"}}`, "Observation.valueQuantity.value", "wrong JSON type string, want number", ErrInvalid},
		{"nested coding", `{` + obs + `,"status":"final","category":[{"coding":[{"system":5}]}]}`, "Observation.category[0].coding[0].system", "wrong JSON type", ErrInvalid},
		{"bad id", `{` + obs + `,"status":"final","id":"Zy xw/1"}`, "Observation.id", "not a valid id", ErrInvalid},
		{"gender", `{"resourceType":"Patient","gender":"Zyxwvut"}`, "Patient.gender", "allowed codes", ErrInvalid},
		{"birthDate with time", `{"resourceType":"Patient","birthDate":"1990-01-01T00:00:00Z"}`, "Patient.birthDate", "not a valid date", ErrInvalid},
		{"medplum contained", `{"resourceType":"Patient","contained":[{"resourceType":"Project","id":"p"}]}`, "Patient.contained[0].resourceType", "not an R4 resource type", ErrUnknownType},
		{"medplum in bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Bot"}}]}`, "Bundle.entry[0].resource.resourceType", "not an R4 resource type", ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(mustDecode(t, tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %T, want *ValidationError", err)
			}
			found := false
			for _, is := range ve.Issues {
				if is.Path == tt.wantPath && strings.Contains(is.Message, tt.wantMsg) {
					found = true
				}
				if strings.Contains(is.Path+is.Message, "Zy") {
					t.Errorf("issue echoes a value: %+v", is)
				}
			}
			if !found {
				t.Errorf("issues %+v lack {%s: ...%s...}", ve.Issues, tt.wantPath, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "Zy") {
				t.Errorf("error text echoes a value: %v", err)
			}
		})
	}
}

func TestValidateUnknownType(t *testing.T) {
	v := sharedValidator(t)
	for _, rt := range []string{"Project", "Bot", "User", "ClientApplication", "Login", "Nope", ""} {
		err := v.Validate(Resource{"resourceType": rt})
		if !errors.Is(err, ErrUnknownType) {
			t.Errorf("Validate(%q): err = %v, want ErrUnknownType", rt, err)
		}
	}
}

func TestValidateDecimalPrecision(t *testing.T) {
	v := sharedValidator(t)
	res := mustDecode(t, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}`)
	if err := v.Validate(res); err != nil {
		t.Fatal(err)
	}
	out, _ := res.Marshal()
	if !bytes.Contains(out, []byte(`"value":1.50`)) {
		t.Errorf("validation changed the decimal: %s", out)
	}
}

func TestValidateConcurrent(t *testing.T) {
	v := NewValidator() // not compiled: the first calls race to compile
	res := mustDecode(t, string(readTestdata(t, "Observation.json")))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- v.Validate(res) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestValidationIssueCap(t *testing.T) {
	v := sharedValidator(t)
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Patient","name":[`)
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"family":5}`)
	}
	sb.WriteString(`]}`)
	err := v.Validate(mustDecode(t, sb.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Issues) != MaxIssues {
		t.Fatalf("err = %v; want a ValidationError with %d issues", err, MaxIssues)
	}
}

func BenchmarkValidateObservation(b *testing.B) {
	v := sharedValidator(b)
	res := mustDecode(b, string(readTestdata(b, "Observation.json")))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeObservation(b *testing.B) {
	raw := readTestdata(b, "Observation.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(raw), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
