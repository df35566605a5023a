package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70)
	deepArr := `{"resourceType":"Basic","x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "}"
	tests := []struct {
		name string
		body string
		lim  Limits
		want error
	}{
		{"empty", ``, Limits{}, ErrInvalid},
		{"whitespace", "  \n", Limits{}, ErrInvalid},
		{"array", `[{"resourceType":"Patient"}]`, Limits{}, ErrInvalid},
		{"string", `"Patient"`, Limits{}, ErrInvalid},
		{"null", `null`, Limits{}, ErrInvalid},
		{"no resourceType", `{"id":"1"}`, Limits{}, ErrInvalid},
		{"null resourceType", `{"resourceType":null}`, Limits{}, ErrInvalid},
		{"numeric resourceType", `{"resourceType":5}`, Limits{}, ErrInvalid},
		{"unknown type", `{"resourceType":"Foo"}`, Limits{}, ErrUnknownType},
		{"medplum type", `{"resourceType":"Project"}`, Limits{}, ErrUnknownType},
		{"lower-case type", `{"resourceType":"patient"}`, Limits{}, ErrUnknownType},
		{"trailing object", `{"resourceType":"Patient"}{}`, Limits{}, ErrInvalid},
		{"trailing garbage", `{"resourceType":"Patient"} x`, Limits{}, ErrInvalid},
		{"truncated", `{"resourceType":"Patient","name":[`, Limits{}, ErrInvalid},
		{"syntax", `{"resourceType":"Patient",}`, Limits{}, ErrInvalid},
		{"duplicate key", `{"resourceType":"Patient","id":"a","id":"b"}`, Limits{}, ErrInvalid},
		{"duplicate nested key", `{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}`, Limits{}, ErrInvalid},
		{"invalid utf8", "{\"resourceType\":\"Patient\",\"id\":\"\xff\"}", Limits{}, ErrInvalid},
		{"too deep", deep, Limits{}, ErrTooDeep},
		{"too deep arrays", deepArr, Limits{}, ErrTooDeep},
		{"depth limit 2", `{"resourceType":"Patient","meta":{"tag":[]}}`, Limits{MaxDepth: 2}, ErrTooDeep},
		{"too large", `{"resourceType":"Patient","id":"123456789"}`, Limits{MaxBytes: 20}, ErrTooLarge},
		{"bundle entries", `{"resourceType":"Bundle","entry":[{},{},{}]}`, Limits{MaxEntries: 2}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.body), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDecodeErrorsDoNotEchoInput checks that error text never contains
// bytes of the body, which may be PHI.
func TestDecodeErrorsDoNotEchoInput(t *testing.T) {
	bodies := []string{
		`{"resourceType":"Patient","name":[{"family":"Zyxwvut"}],}`,
		`{"resourceType":"Zyxwvut"}`,
		`{"resourceType":"Patient","Zyxwvut":1,"Zyxwvut":2}`,
		`Zyxwvut`,
		`{"resourceType":"Patient"} "Zyxwvut"`,
	}
	for _, b := range bodies {
		_, err := Decode(strings.NewReader(b), Limits{})
		if err == nil {
			t.Fatalf("Decode(%q) succeeded", b)
		}
		if strings.Contains(err.Error(), "Zyxwvut") || strings.Contains(err.Error(), "Zy") {
			t.Errorf("error echoes input: %v", err)
		}
	}
}

func TestDecodeDepthLimitIsInclusive(t *testing.T) {
	// Depth 3: object > array > object.
	body := `{"resourceType":"Patient","name":[{"family":"x"}]}`
	if _, err := Decode(strings.NewReader(body), Limits{MaxDepth: 3}); err != nil {
		t.Fatalf("depth 3 with MaxDepth 3: %v", err)
	}
	if _, err := Decode(strings.NewReader(body), Limits{MaxDepth: 2}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth 3 with MaxDepth 2: err = %v, want ErrTooDeep", err)
	}
}

func TestDecodeExactMaxBytes(t *testing.T) {
	body := `{"resourceType":"Patient"}`
	if _, err := Decode(strings.NewReader(body), Limits{MaxBytes: int64(len(body))}); err != nil {
		t.Fatalf("body of exactly MaxBytes: %v", err)
	}
	if _, err := Decode(strings.NewReader(body), Limits{MaxBytes: int64(len(body) - 1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("body of MaxBytes+1: err = %v, want ErrTooLarge", err)
	}
}

func TestDecodePreservesDecimals(t *testing.T) {
	body := `{"resourceType":"Observation","status":"final","code":{"text":"x"},` +
		`"valueQuantity":{"value":1.50,"unit":"mg"},"component":[{"code":{"text":"y"},"valueInteger":10000000000000000001},` +
		`{"code":{"text":"z"},"valueQuantity":{"value":1.0e-7}}]}`
	res, err := Decode(strings.NewReader(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"value":1.50`, `10000000000000000001`, `1.0e-7`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("re-encoded resource lost %s: %s", want, out)
		}
	}
	if !bytes.HasPrefix(out, []byte(`{"resourceType":"Observation",`)) {
		t.Errorf("resourceType is not first: %s", out)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	raw := readTestdata(t, "Patient.json")
	res, err := Decode(bytes.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`\u003c`)) {
		t.Error("Marshal escaped HTML in the narrative")
	}
	again, err := Decode(bytes.NewReader(out), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := again.Marshal()
	if !bytes.Equal(out, out2) {
		t.Error("Marshal is not stable across a round trip")
	}
}

func TestResourceHelpers(t *testing.T) {
	res, err := Decode(strings.NewReader(`{"resourceType":"Patient","id":"a","meta":"bogus"}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Type() != "Patient" || res.ID() != "a" {
		t.Fatalf("Type, ID = %q, %q", res.Type(), res.ID())
	}
	res.SetID("b")
	res.SetVersionID("3")
	at := time.Date(2024, 2, 29, 13, 4, 5, 123456789, time.FixedZone("x", 3600))
	res.SetLastUpdated(at)
	if res.ID() != "b" || res.VersionID() != "3" {
		t.Errorf("ID, VersionID = %q, %q", res.ID(), res.VersionID())
	}
	got, ok := res.LastUpdated()
	if !ok || !got.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("LastUpdated = %v, %v", got, ok)
	}
	if s := res["meta"].(map[string]any)["lastUpdated"]; s != "2024-02-29T12:04:05.123456Z" {
		t.Errorf("lastUpdated = %v", s)
	}
	res.SetID("")
	if _, ok := res["id"]; ok {
		t.Error("SetID(\"\") kept the id")
	}
	if err := NewValidator().Validate(res); err != nil {
		t.Errorf("resource with meta set by helpers is invalid: %v", err)
	}
}
