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
// rejects those types at the top level and when nested. The R4 JSON
// schema does not check everything the specification requires (required
// primitives such as Observation.status, invariants, terminology
// bindings beyond required enums); phivault does not claim more.
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
