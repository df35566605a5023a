// Package reimport makes importing a Bundle again create nothing new
// (ADR 0037). Conditional gives every create of a Bundle a
// request.ifNoneExist, as a client of a FHIR transaction would:
//
//   - an entry that has one keeps it (Synthea's shared bundles);
//   - a person or directory resource (Patient, Practitioner,
//     PractitionerRole, Organization, Location) with an identifier
//     (system and value) matches on its first one: identifier=system|value.
//     A Patient already stored under that identifier is reused, and the
//     server points the Bundle's references to it (its fullUrl) at the
//     stored one;
//   - any other resource matches on the hash of its entry's fullUrl and
//     its content as the file has it (its id and its references to the
//     Bundle's fullUrls, hence to its patient, included), carried as a
//     meta.tag of system [TagSystem]: _tag=TagSystem|hash. Entries of
//     one Bundle with the same hash get distinct ones (the second is the
//     hash and "#2"), so none is lost to another. An entry with neither
//     a fullUrl nor an id is left unconditional: a hash of its content
//     alone, which a reader of the stored resource could recompute,
//     would let one who sees all of it but a masked element confirm a
//     guess of that element.
//
// PUT entries (NDJSON lines with an id) are idempotent already and are
// left alone. The package reads and writes bytes: it touches no
// instance, so the CLI uses it for a direct import and for --url alike.
package reimport
