package deid

// Extensions are kept only when the transformer knows what they hold
// (a short list); every other extension is dropped and counted, because
// an extension can carry anything (Synthea's mother's maiden name and
// birth place are extensions).
const (
	raceURL        = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	ethnicityURL   = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	birthSexURL    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
	geolocationURL = "http://hl7.org/fhir/StructureDefinition/geolocation"
)

// birthSexCodes are the codes of the US Core birth sex value set (F, M,
// UNK; ASKU and OTH in earlier US Core versions).
var birthSexCodes = map[string]bool{"F": true, "M": true, "UNK": true, "ASKU": true, "OTH": true}

// extension applies the extension rule.
func (w *walk) extension(m map[string]any, depth int) (any, bool) {
	url, _ := m["url"].(string)
	switch url {
	case geolocationURL:
		w.count(reasonGeolocation)
		return nil, false
	case birthSexURL:
		// A code of the value set (M, F, UNK): kept like Patient.gender.
		if c, ok := m["valueCode"].(string); ok && birthSexCodes[c] {
			return map[string]any{"url": url, "valueCode": c}, true
		}
		w.count(reasonMalformed)
		return nil, false
	case raceURL, ethnicityURL:
		// OMB categories and detailed codes (CDC race and ethnicity
		// code system) are kept; the "text" part is free text.
		subs, _ := m["extension"].([]any)
		var kept []any
		for _, s := range subs {
			sm, ok := s.(map[string]any)
			if !ok {
				w.count(reasonMalformed)
				continue
			}
			su, _ := sm["url"].(string)
			coding, ok := sm["valueCoding"].(map[string]any)
			if (su != "ombCategory" && su != "detailed") || !ok {
				w.count(reasonFreeText)
				continue
			}
			if c, ok := w.complex("Coding", coding, depth); ok {
				kept = append(kept, map[string]any{"url": su, "valueCoding": c})
			}
		}
		if len(kept) == 0 {
			return nil, false
		}
		return map[string]any{"url": url, "extension": kept}, true
	}
	w.count(reasonExtension)
	return nil, false
}
