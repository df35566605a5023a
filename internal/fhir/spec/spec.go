// Package spec embeds the FHIR R4 (4.0.1) artefacts phivault needs at run
// time: the JSON schema, the SearchParameter bundle, the Patient
// compartment definition and the tables of required and summary elements
// generated from the R4 StructureDefinitions. See NOTICE for their origin and
// licence.
//
// The files are stored gzip-compressed (about 0.4 MB instead of 5.2 MB) so
// the repository and the binary stay small; they are decompressed once, by
// the component that loads them at start-up, so the cost (a few
// milliseconds) is paid once per process.
//
// Every function returns a fresh copy: callers may keep or modify it.
package spec

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
)

//go:embed *.json.gz
var files embed.FS

// maxUncompressed bounds decompression of an embedded file. The largest
// (the schema) is 3.0 MB; the cap only guards against a corrupted build.
const maxUncompressed = 16 << 20

// Schema returns the FHIR R4 JSON schema (draft-06), uncompressed.
func Schema() ([]byte, error) { return load("fhir.schema.json.gz") }

// SearchParameters returns the R4 SearchParameter Bundle, uncompressed.
func SearchParameters() ([]byte, error) { return load("search-parameters.json.gz") }

// PatientCompartment returns the R4 Patient CompartmentDefinition,
// uncompressed.
func PatientCompartment() ([]byte, error) { return load("compartmentdefinition-patient.json.gz") }

// RequiredElements returns the table of elements with minimum cardinality
// 1 or more, generated from the R4 StructureDefinitions by
// internal/fhir/internal/gen (its doc describes the format), uncompressed.
func RequiredElements() ([]byte, error) { return load("required-elements.json.gz") }

// SummaryElements returns the table of summary elements (isSummary),
// mandatory top-level elements and choice spellings generated from the
// R4 StructureDefinitions by internal/fhir/internal/gensummary (its doc
// describes the format), uncompressed.
func SummaryElements() ([]byte, error) { return load("summary-elements.json.gz") }

func load(name string) ([]byte, error) {
	f, err := files.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening embedded %s: %w", name, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("decompressing embedded %s: %w", name, err)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(zr, maxUncompressed+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing embedded %s: %w", name, err)
	}
	if n > maxUncompressed {
		return nil, fmt.Errorf("decompressing embedded %s: larger than %d bytes", name, maxUncompressed)
	}
	return buf.Bytes(), nil
}
