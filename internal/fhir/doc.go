// Package fhir decodes, validates and re-encodes FHIR R4 (4.0.1)
// resources held as plain JSON trees ([Resource]).
//
// # Decoding
//
// [Decode] is the only way untrusted bytes become a [Resource]. It bounds
// every cost the body can drive ([Limits]: size, nesting depth, Bundle
// entries) before building a tree, rejects what JSON leaves ambiguous
// (duplicate keys, trailing data, invalid UTF-8) and keeps numbers as
// [encoding/json.Number], so decimal precision survives a round trip
// through [Resource.Marshal] ("1.50" stays "1.50", as FHIR requires).
//
// # Validation
//
// [Validator] checks a resource against the official R4 JSON schema,
// vendored in package spec, compiled once per Validator with
// github.com/santhosh-tekuri/jsonschema/v6. Each resource is checked
// against its own definition (#/definitions/<Type>), about 40 times
// faster than the schema root. The vendored schema also defines 57
// Medplum types; [IsR4Type] is the authority on type names and Validate
// rejects those types at the top level and when nested. The official R4
// schema omits the _element of canonical properties (Meta._profile,
// StructureDefinition._baseDefinition); the Validator adds them in memory
// before compiling.
//
// The R4 JSON schema requires no primitive, so Validate also checks
// cardinality minimums: every element with min >= 1 in the official R4
// StructureDefinitions (Observation.status, Observation.component.code,
// Bundle.entry.request.method, Extension.url, Narrative.div, ...) must be
// present, in the resource, its backbone elements and data types, its
// extensions and its nested resources. A choice element such as
// UsageContext.value[x] is present when any of its typed members is, and
// a primitive is present when only its _element (extension) is. The table
// is generated from the definitions (spec/required-elements.json.gz, by
// internal/gen) and walked once per resource, adding about 2 µs for an
// Observation. Maximum cardinality needs no check of its own: the schema
// already tells arrays from single values. Invariants (FHIRPath
// constraints) and terminology bindings beyond required enums are not
// checked; phivault does not claim more.
//
// # Security invariants
//
//   - No error text from this package contains a value from the input:
//     errors name the operation, a location (element names matching an
//     identifier pattern, else "?"), byte offsets and limits. They are safe
//     to return in an OperationOutcome and to log.
//   - Work per body is bounded by [Limits] before any tree is built, and
//     validation reports at most [MaxIssues] issues.
//   - Types are strict R4: a name that is not an R4 resource type is
//     [ErrUnknownType], whatever the vendored schema says.
//
// All functions are safe for concurrent use; a [Resource] is a plain map
// and is not.
package fhir
