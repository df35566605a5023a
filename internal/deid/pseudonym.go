package deid

import (
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// Domain labels of the export key's PRF: one input space per use, so a
// resource id and an identifier value that happen to be equal get
// unrelated pseudonyms, and neither tells a date shift.
const (
	domainID         = "phivault/deid/v1/resource-id\x00"
	domainIdentifier = "phivault/deid/v1/identifier\x00"
	domainShift      = "phivault/deid/v1/date-shift\x00"
)

// coreProfileBase prefixes the canonical URL of a core resource type
// (Reference.type may name the type that way).
const coreProfileBase = "http://hl7.org/fhir/StructureDefinition/"

// pseudoID returns the pseudonym of resource id id: 122 bits of the
// export key's PRF, written as a version-4 UUID so that it is valid
// both as a FHIR id and after "urn:uuid:". The same id gives the same
// pseudonym in every resource of the export, whatever its type, so
// "Patient/X", "urn:uuid:X" and the Patient whose id is X still match.
func (t *Transformer) pseudoID(id string) string {
	b := t.mustPRF(domainID+id, 16)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// pseudoIdentifier returns the pseudonym of an Identifier.value: 128
// bits of the PRF, in hex. It is keyed by the value alone, so one
// person's MRN is the same pseudonym wherever it appears.
func (t *Transformer) pseudoIdentifier(value string) string {
	return hex.EncodeToString(t.mustPRF(domainIdentifier+value, 16))
}

// shiftDays returns the date shift of the patient (or other subject)
// key: uniform in [-N, N] for N = Options.DateShiftDays, 0 when dates
// are kept to the year. The modulo bias is below 2^-50 for N up to
// MaxDateShiftDays.
func (t *Transformer) shiftDays(key string) int {
	n := t.opts.DateShiftDays
	if n == 0 {
		return 0
	}
	v := binary.BigEndian.Uint64(t.mustPRF(domainShift+key, 8))
	return int(v%uint64(2*n+1)) - n
}

// mustPRF computes the export key's PRF. Tink's HMAC PRF fails only for
// an output length outside 1..32, which no caller here asks for: a
// failure is a programmer error.
func (t *Transformer) mustPRF(input string, n uint32) []byte {
	b, err := t.prf.Compute([]byte(input), n)
	if err != nil {
		panic("deid: " + err.Error())
	}
	return b
}

// pseudoRef returns the pseudonymous form of a reference or fullUrl:
// "Type/id" and "Type/id/_history/v", relative or absolute (the base
// URL and the version are dropped), "urn:uuid:id" and "#id" (a
// contained resource). ok is false for any other form (a conditional
// reference "Type?…", a URL with a query, a logical id of another
// system): those are dropped.
func (t *Transformer) pseudoRef(s string) (string, bool) {
	switch {
	case strings.HasPrefix(s, "urn:uuid:"):
		id := strings.TrimPrefix(s, "urn:uuid:")
		if !validID(id) {
			return "", false
		}
		return "urn:uuid:" + t.pseudoID(id), true
	case s == "#":
		return s, true // the container itself
	case strings.HasPrefix(s, "#"):
		if !validID(s[1:]) {
			return "", false
		}
		return "#" + t.pseudoID(s[1:]), true
	case strings.ContainsAny(s, "?#"):
		return "", false
	}
	parts := strings.Split(s, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || (n > 2 && !strings.Contains(s, "://")) {
		return "", false
	}
	typ, id := parts[n-2], parts[n-1]
	if !fhir.IsR4Type(typ) || !validID(id) {
		return "", false
	}
	return typ + "/" + t.pseudoID(id), true
}

// genericIdentifierSystem reports whether an identifier system is kept
// beside a pseudonymised value: each system kept names a kind of
// national identifier and nothing about who issued it or where. Every
// other system (a hospital's MRN namespace, a state's driver's licence
// OID, a passport URL) narrows the person's institution or state and is
// dropped; Identifier.type still says what kind of identifier it was.
func genericIdentifierSystem(s string) bool {
	switch s {
	case "http://hl7.org/fhir/sid/us-ssn",
		"urn:oid:2.16.840.1.113883.4.1", // US SSN
		"http://hl7.org/fhir/sid/us-npi",
		"http://hl7.org/fhir/sid/us-medicare",
		"http://hl7.org/fhir/sid/us-mbi":
		return true
	}
	return false
}
