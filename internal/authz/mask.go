package authz

import (
	"encoding/json"
	"fmt"
)

// Minimum necessary (DESIGN §8): a caller whose decision carries Mask
// (the policies do not permit viewIdentifiers) gets the resource
// without its government identifiers, and meta.security says so with
// the v3 ObservationValue code REDACTED.

// SecuritySystem is the v3 ObservationValue code system of the
// REDACTED and MASKED codes.
const SecuritySystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

// maskedSystems and maskedTypes name the identifiers removed: US SSN,
// and the v2 identifier types SS (SSN), SB (social beneficiary), DL
// (driver's licence), PPN (passport).
var (
	maskedSystems = map[string]bool{"http://hl7.org/fhir/sid/us-ssn": true, "urn:oid:2.16.840.1.113883.4.1": true}
	maskedTypes   = map[string]bool{"SS": true, "SB": true, "DL": true, "PPN": true}
)

// Redact returns body without government identifiers, marked REDACTED
// in meta.security when anything was removed (unchanged otherwise).
// Errors (not JSON) are returned: the caller fails closed and sends
// nothing.
func Redact(body []byte) ([]byte, error) {
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("redacting: %w", ErrUndecidable)
	}
	ids, _ := res["identifier"].([]any)
	kept := make([]any, 0, len(ids))
	for _, x := range ids {
		id, _ := x.(map[string]any)
		if sensitiveIdentifier(id) {
			continue
		}
		kept = append(kept, x)
	}
	if len(kept) == len(ids) {
		return body, nil
	}
	if len(kept) == 0 {
		delete(res, "identifier")
	} else {
		res["identifier"] = kept
	}
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	sec, _ := meta["security"].([]any)
	meta["security"] = append(sec, map[string]any{"system": SecuritySystem, "code": "REDACTED", "display": "redacted"})
	return json.Marshal(res)
}

func sensitiveIdentifier(id map[string]any) bool {
	if id == nil {
		return false
	}
	if sys, _ := id["system"].(string); maskedSystems[sys] {
		return true
	}
	typ, _ := id["type"].(map[string]any)
	codings, _ := typ["coding"].([]any)
	for _, c := range codings {
		m, _ := c.(map[string]any)
		if code, _ := m["code"].(string); maskedTypes[code] {
			return true
		}
	}
	return false
}
