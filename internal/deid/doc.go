// Package deid de-identifies FHIR R4 resources for research by the
// HIPAA Safe Harbor method (45 CFR §164.514(b)(2)), one resource at a
// time: JSON in, JSON out.
//
// # Use
//
// Make one [Transformer] per export with [New] and call
// [Transformer.Transform] for each resource, from any number of
// goroutines. A resource the transformer must leave out gives an error
// wrapping [ErrDropped]: skip it. [Transformer.Report] gives the counts
// per resource type and reason (never a value), for the export's
// report. docs/deidentification.md says, for a privacy officer, what
// each of the 18 identifiers becomes; ADR 0050 records the decisions.
//
// # Design: a schema-driven, fail-closed walk
//
// The transformer knows no resource type in particular. It walks the
// resource with the official R4 JSON schema (vendored in fhir/spec) and
// decides by datatype, so it handles all 146 R4 types and the resources
// inside them (contained, Bundle.entry.resource):
//
//   - HumanName, ContactPoint, Attachment, Annotation, Narrative and
//     Signature are removed wherever they are (names of patients,
//     contacts, related persons and practitioners alike);
//   - Address keeps a state that is a US state or territory (code or
//     name) or an ISO 3166-2 code, a country that is an ISO 3166-1 code
//     or a name of the United States, and a 3-digit ZIP code (or "000"
//     for the 3-digit areas of 20,000 people or fewer,
//     restricted-zip3.txt); anything else there is free text, removed;
//   - date and dateTime keep the year; instant, which has no year-only
//     form, is removed; or, with Options.DateShiftDays, dates move by a
//     per-patient offset (not Safe Harbor); a date whose year is the
//     export's year minus 90 or earlier indicates an age over 89 and is
//     removed wherever it is, in both modes; time (a time of day) is
//     removed;
//   - resource ids, references, fullUrls and Identifier values become
//     pseudonyms; Reference.display is removed;
//   - string and markdown (free text), uri, url, canonical, oid, uuid,
//     id and base64Binary are removed, except the geography Safe
//     Harbor keeps (Address.state, Address.country, checked);
//   - a Coding keeps only system and code (and userSelected), and only
//     when the system is a standard terminology of terminologies.txt
//     and the code has its syntax; any other Coding is removed.
//     Coding.display, Coding.version and CodeableConcept.text are free
//     text and removed everywhere (a consumer re-derives displays from
//     system and code). A quantity keeps a UCUM code, and its unit only
//     when equal to that code;
//   - extensions stay only when understood (US Core race, ethnicity,
//     birth sex); a modifier extension drops the whole resource, since
//     without it the resource would mean something else;
//   - ages of 90 or more (a Patient's birth date, any Age, Quantity or
//     Duration in years, the value of an Observation coded as an age)
//     become the category "90 or older";
//   - meta keeps profiles and HL7 security labels and gains PSEUDED and
//     REDACTED; versionId, lastUpdated, source and tags are removed.
//
// Anything the schema does not define, of the wrong JSON shape, or
// without a rule that keeps it, is removed and counted: the walk fails
// closed.
//
// # Security invariants
//
//   - Pseudonyms come from HMAC-SHA256 (Tink PRF, keys.EphemeralPRF)
//     under a random key made by New and never written anywhere: no one,
//     the operator included, can recompute or reverse them after the
//     export, and two exports share none (§164.514(c): the code is not
//     derived in a way that can be translated back).
//   - No error text and no Report holds a value from a resource.
//   - Work is bounded: bodies are read by fhir.Decode with its limits,
//     and resources nest at most 8 deep.
//   - A Transformer is safe for concurrent use; Transform does not keep
//     or modify its input.
package deid
