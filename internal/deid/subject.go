package deid

import (
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/ident"
)

// patientKey names whose dates a resource's dates shift with, so that
// every resource of one patient moves by the same number of days:
//
//   - a Patient: its own id;
//   - a resource whose subject, patient or beneficiary is a reference
//     "Patient/<id>" or "urn:uuid:<id>": that id (the same string as the
//     Patient's own id in the store and in Synthea's Bundles);
//   - else the first "Patient/<id>" reference anywhere in it, in the
//     order of sorted property names (Provenance.target, for one);
//   - else the resource itself (an Organization, a Practitioner): its
//     dates move together, unrelated to any patient's.
//
// The key is an input of the export key's PRF and never leaves it.
func patientKey(rt string, in map[string]any) string {
	id, _ := in["id"].(string)
	if rt == "Patient" {
		return id
	}
	for _, f := range []string{"subject", "patient", "beneficiary"} {
		ref, _ := in[f].(map[string]any)
		s, _ := ref["reference"].(string)
		if p, ok := strings.CutPrefix(s, ident.PatientPrefix); ok && validID(p) {
			return p
		}
		if p, ok := strings.CutPrefix(s, "urn:uuid:"); ok && validID(p) {
			return p
		}
	}
	if p := firstPatientRef(in, 0); p != "" {
		return p
	}
	return rt + "/" + id
}

// firstPatientRef finds the first "Patient/<id>" reference in v.
func firstPatientRef(v any, depth int) string {
	if depth > 64 {
		return ""
	}
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["reference"].(string); ok {
			if p, ok := strings.CutPrefix(s, ident.PatientPrefix); ok && validID(p) {
				return p
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p := firstPatientRef(x[k], depth+1); p != "" {
				return p
			}
		}
	case []any:
		for _, e := range x {
			if p := firstPatientRef(e, depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}
