// Package fhirconformance_test is a conformance suite for phivault's
// FHIR R4 REST API, written from the specification text (R4 4.0.1:
// http.html, search.html, fhirpatch.html, bundle.html,
// capabilitystatement.html) and the server's own CapabilityStatement,
// in the style of the Touchstone scripts a tester would write: it
// drives a real server over HTTPS (internal/apitest) on SQLite and
// PostgreSQL with a privileged "system" token, so authorization is not
// what is under test.
//
// Each check cites the section of the specification it tests, as
// "R4 http.html#anchor". Where phivault deliberately departs from the
// specification (documented in docs/fhir.md: JSON only, _type required
// for system search, sorting only on dates and ids) the check asserts
// the documented behaviour and says why.
package fhirconformance_test
