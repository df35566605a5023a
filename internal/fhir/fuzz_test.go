package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every error wraps a
// sentinel, and that whatever it accepts re-encodes and decodes to the same
// bytes. Seeds: the Synthea resources in testdata/.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 8<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Patient","id":"a","id":"b"}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bot"}}]}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`))
	lim := Limits{MaxBytes: 64 << 10, MaxDepth: 16, MaxEntries: 8}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Decode(bytes.NewReader(body), lim)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) &&
				!errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		out, err := res.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded resource: %v", err)
		}
		again, err := Decode(bytes.NewReader(out), lim)
		if err != nil {
			t.Fatalf("re-decoding Marshal output: %v", err)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable: %v", err)
		}
	})
}
