package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// syntheaDir holds the shared Synthea bundles (outside the repository; see
// /work/shared/data/README.md). Tests that need all of them skip when it is
// absent; the small copies in testdata/ are always available.
const syntheaDir = "../../../shared/data/synthea"

// syntheaEntries returns every entry resource of every shared Synthea
// bundle, keyed by "file#index".
func syntheaEntries(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(syntheaDir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(syntheaDir, "incremental", "*.json"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("shared Synthea data not available")
	}
	out := map[string]json.RawMessage{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, e := range bundle.Entry {
			out[filepath.Base(f)+"#"+strconv.Itoa(i)] = e.Resource
		}
	}
	return out
}

func TestValidateAllSynthea(t *testing.T) {
	entries := syntheaEntries(t)
	v := NewValidator()
	counts := map[string]int{}
	for name, raw := range entries {
		res, err := Decode(bytes.NewReader(raw), Limits{})
		if err != nil {
			t.Errorf("%s: decode: %v", name, err)
			continue
		}
		if err := v.Validate(res); err != nil {
			t.Errorf("%s (%s): %v", name, res.Type(), err)
			continue
		}
		counts[res.Type()]++
	}
	if len(entries) < 13000 {
		t.Errorf("only %d Synthea entries found, want 13,607", len(entries))
	}
	t.Logf("validated %d entries: %v", len(entries), counts)
}

func TestDecodeWholeSyntheaBundles(t *testing.T) {
	// The smallest patient bundle: validating a whole Bundle goes through
	// the schema's ResourceList oneOf for every entry (about 0.7 ms each).
	files, _ := filepath.Glob(filepath.Join(syntheaDir, "Soila394_*.json"))
	if len(files) == 0 {
		t.Skip("shared Synthea data not available")
	}
	v := NewValidator()
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
		if _, err := Decode(bytes.NewReader(b), Limits{MaxEntries: 10}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("MaxEntries 10: err = %v, want ErrTooLarge", err)
		}
	}
}
