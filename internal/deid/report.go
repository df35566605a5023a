package deid

import (
	"maps"
	"sync"
)

// The reasons an element or resource is removed or generalised, as the
// Report counts them. They name rules, never values.
const (
	reasonName              = "name (HumanName)"
	reasonTelecom           = "telecom (ContactPoint)"
	reasonAttachment        = "attachment or photo"
	reasonAnnotation        = "annotation or note"
	reasonNarrative         = "narrative text"
	reasonSignature         = "signature"
	reasonFreeText          = "free text (string, markdown)"
	reasonCodeText          = "CodeableConcept.text (free text)"
	reasonDisplay           = "Coding.display (free text)"
	reasonCodingVersion     = "Coding.version"
	reasonCodingLocal       = "coding not of a standard terminology, or code not of its syntax"
	reasonUnitLocal         = "quantity code not of UCUM syntax (system and code removed)"
	reasonUnitText          = "quantity unit text not equal to its UCUM code"
	reasonStateCountry      = "address state or country not recognised"
	reasonTime              = "time of day"
	reasonDateOver89        = "date of a year indicating an age over 89"
	reasonAgeAnswer         = "age answer over 89 set to 90 or older"
	reasonURL               = "url, uri or canonical"
	reasonBinary            = "binary data (base64Binary)"
	reasonAddressDetail     = "address below the state (line, city, district, text, period)"
	reasonZIP3              = "postal code generalised to 3 digits"
	reasonZIP000            = "postal code of a 3-digit area of 20,000 people or fewer, set to 000"
	reasonZIPOther          = "postal code that is not a US ZIP code"
	reasonGeolocation       = "geolocation (extension, Location.position)"
	reasonDateYear          = "date reduced to its year"
	reasonDateShift         = "date shifted"
	reasonInstant           = "instant (no year-only form)"
	reasonBirth90           = "birth date of a patient 90 or older"
	reasonAge90             = "age over 89 set to 90 or older"
	reasonIdentifierValue   = "identifier value pseudonymised"
	reasonIdentifierSystem  = "identifier system that names an issuer"
	reasonResourceID        = "resource id pseudonymised"
	reasonReference         = "reference pseudonymised"
	reasonReferenceOther    = "reference of a form not understood (conditional, query)"
	reasonReferenceDisplay  = "reference display"
	reasonMeta              = "meta (versionId, lastUpdated, source, tags)"
	reasonExtension         = "extension not understood"
	reasonPrimitiveExt      = "extension of a primitive (_element)"
	reasonElementID         = "element id"
	reasonUnknownElement    = "element not in the R4 schema"
	reasonMalformed         = "element of the wrong JSON shape"
	reasonModifierExtension = "modifier extension not understood"
	reasonUnknownType       = "resource type not in R4"
	reasonBinaryResource    = "Binary resource"
	reasonTooDeep           = "resources nested too deeply"
	reasonInvalidInput      = "input that is not a FHIR resource"
)

// Report is what one export removed and kept, in counts only.
type Report struct {
	Written map[string]int            // resources written, per resource type
	Dropped map[string]map[string]int // resources left out, per type and reason
	Removed map[string]map[string]int // elements removed or generalised, per resource type and reason
}

// tally accumulates a Report; safe for concurrent use.
type tally struct {
	mu sync.Mutex
	r  Report
}

func newTally() *tally {
	return &tally{r: Report{Written: map[string]int{}, Dropped: map[string]map[string]int{}, Removed: map[string]map[string]int{}}}
}

func (t *tally) add(typ, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bump(t.r.Removed, safeType(typ), reason, 1)
}

func (t *tally) merge(typ string, counts map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for r, n := range counts {
		bump(t.r.Removed, safeType(typ), r, n)
	}
}

func (t *tally) dropped(typ, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bump(t.r.Dropped, safeType(typ), reason, 1)
}

func (t *tally) done(typ string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.r.Written[safeType(typ)]++
}

func (t *tally) snapshot() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := Report{Written: maps.Clone(t.r.Written), Dropped: map[string]map[string]int{}, Removed: map[string]map[string]int{}}
	for k, v := range t.r.Dropped {
		out.Dropped[k] = maps.Clone(v)
	}
	for k, v := range t.r.Removed {
		out.Removed[k] = maps.Clone(v)
	}
	return out
}

func bump(m map[string]map[string]int, typ, reason string, n int) {
	if m[typ] == nil {
		m[typ] = map[string]int{}
	}
	m[typ][reason] += n
}
