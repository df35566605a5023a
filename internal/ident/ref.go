package ident

import "strings"

// MaxIDLen is the longest FHIR id (R4 datatype id: [A-Za-z0-9\-\.]{1,64}).
const MaxIDLen = 64

// maxTypeLen bounds a resource type name (the longest in R4 is 34).
const maxTypeLen = 64

// Ref is a relative literal reference "Type/id" to a resource on this
// server. The zero Ref is no reference.
type Ref struct {
	Type string // resource type, e.g. "Patient"
	ID   string // logical id
}

// RefTo returns the reference to typ/id. It does not check them: use
// ParseRef for untrusted input.
func RefTo(typ, id string) Ref { return Ref{Type: typ, ID: id} }

// PatientRef returns the reference "Patient/<id>".
func PatientRef(id string) Ref { return Ref{Type: "Patient", ID: id} }

// ParseRef parses s as exactly "Type/id": a resource type (an upper-case
// letter, then letters) and a FHIR id. Anything else (an absolute URL, a
// version, a contained or conditional reference, an empty part) is not
// accepted: ok is false.
func ParseRef(s string) (r Ref, ok bool) {
	typ, id, found := strings.Cut(s, "/")
	if !found || !ValidType(typ) || !ValidID(id) {
		return Ref{}, false
	}
	return Ref{Type: typ, ID: id}, true
}

// String returns "Type/id", or "" for the zero Ref.
func (r Ref) String() string {
	if r == (Ref{}) {
		return ""
	}
	return r.Type + "/" + r.ID
}

// IsPatient reports whether r is a Patient reference.
func (r Ref) IsPatient() bool { return r.Type == "Patient" && r.ID != "" }

// ValidType reports whether typ has the shape of a FHIR resource type
// name: an upper-case ASCII letter followed by ASCII letters. It does not
// check that the type exists.
func ValidType(typ string) bool {
	if typ == "" || len(typ) > maxTypeLen || typ[0] < 'A' || typ[0] > 'Z' {
		return false
	}
	for i := 1; i < len(typ); i++ {
		if c := typ[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidID reports whether id is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and .
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
