// Package synth generates realistic, deterministic FHIR R4 patients for demos
// and benchmarks.
//
// # Output
//
// [Generate] first emits one batch Bundle holding the shared directory of
// care providers (Organizations, Locations, Practitioners with NPI
// identifiers, PractitionerRoles), each entry carrying request.ifNoneExist
// so that loading it twice creates nothing new. It then emits one
// transaction Bundle per patient whose entries use urn:uuid fullUrls and
// point at the directory with conditional references
// (Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|NNNNNNNNNN),
// exactly as Synthea does. A patient holds a Patient, a CareTeam, 3–10
// Encounters spread over years, Conditions, vital-sign and laboratory
// Observations, MedicationRequests, AllergyIntolerances, Procedures and
// Immunizations, coded with small but real SNOMED CT, LOINC, RxNorm and CVX
// tables.
//
// # Determinism
//
// The same [Options] give byte-identical output on every platform: every
// patient draws from its own PCG stream seeded by (Seed, patient index),
// times derive from Options.Start (never the wall clock), ids are UUIDs
// drawn from those streams, and JSON is written in a fixed key order. The
// provider directory does not depend on Seed, so patients generated with
// different seeds all resolve against one loaded directory.
//
// # Memory
//
// Generation streams: one patient is built at a time and its buffer is reused,
// so memory stays constant whatever Options.Patients is.
//
// # Security invariants
//
// Everything produced is synthetic. Names come from embedded lists, SSNs use
// the never-issued 999 area, NPIs the 99999 prefix; no real person's data is
// read or produced. The package does no I/O of its own.
package synth
