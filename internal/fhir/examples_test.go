package fhir

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestValidateR4ExamplesSample validates the official R4 examples copied
// into testdata/r4-examples (see its NOTICE): each must pass Decode and
// Validate.
func TestValidateR4ExamplesSample(t *testing.T) {
	v := sharedValidator(t)
	files, err := filepath.Glob("testdata/r4-examples/*.json")
	if err != nil || len(files) < 25 {
		t.Fatalf("testdata/r4-examples: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Decode(bytes.NewReader(b), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(res); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestValidateR4ExamplesAll runs every file of the official R4 examples
// package through Decode and Validate, and logs how many pass and a
// categorised list of the failures. Some official examples are known to
// be invalid, so failures are reported, not failed on: read the log.
// Local runs only:
//
//	npm pack hl7.fhir.r4.examples@4.0.1 && tar xzf hl7.fhir.r4.examples-4.0.1.tgz
//	PHIVAULT_R4_EXAMPLES=$PWD/package go test ./internal/fhir -run R4ExamplesAll -v
func TestValidateR4ExamplesAll(t *testing.T) {
	dir := os.Getenv("PHIVAULT_R4_EXAMPLES")
	if dir == "" {
		t.Skip("PHIVAULT_R4_EXAMPLES not set")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no examples (%v)", dir, err)
	}
	v := sharedValidator(t)
	var passed, failed, skipped int
	categories := map[string][]string{} // category -> files
	for _, f := range files {
		base := filepath.Base(f)
		if base == "package.json" || strings.HasPrefix(base, ".") || base == "ig-r4.json" {
			skipped++ // package metadata, not resources
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Two definition bundles (Bundle-resources, Bundle-dataelements)
		// are larger than DefaultMaxBytes; validate them all the same.
		res, err := Decode(bytes.NewReader(b), Limits{MaxBytes: 64 << 20})
		if err != nil {
			failed++
			categories["decode: "+decodeCategory(err)] = append(categories["decode: "+decodeCategory(err)], base)
			continue
		}
		err = v.Validate(res)
		if err == nil {
			passed++
			continue
		}
		failed++
		var ve *ValidationError
		if !errors.As(err, &ve) {
			categories["validate: "+err.Error()] = append(categories["validate: "+err.Error()], base)
			continue
		}
		seen := map[string]bool{}
		for _, is := range ve.Issues {
			c := "validate: " + issueCategory(is)
			if !seen[c] {
				seen[c] = true
				categories[c] = append(categories[c], base)
			}
		}
	}
	t.Logf("R4 examples: %d passed, %d failed, %d skipped (of %d files)", passed, failed, skipped, len(files))
	for _, c := range slices.Sorted(maps.Keys(categories)) {
		fs := categories[c]
		t.Logf("%4d  %s  e.g. %s", len(fs), c, strings.Join(fs[:min(len(fs), 4)], " "))
	}
}

var indexes = regexp.MustCompile(`\[\d+\]`)

// issueCategory drops array indexes so that one rule counts once.
func issueCategory(is Issue) string {
	return fmt.Sprintf("%s: %s", indexes.ReplaceAllString(is.Path, ""), is.Message)
}

func decodeCategory(err error) string {
	for _, s := range []error{ErrTooLarge, ErrTooDeep, ErrUnknownType, ErrInvalid} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}
