// Package profile validates a resource against stored R4
// StructureDefinitions (profiles), for a stated subset of what a
// profile can say:
//
//   - cardinality (min and max) of every element the profile names, on
//     every instance of its parent element;
//   - fixed[x] (equal) and pattern[x] (contains) values;
//   - type restrictions: the types a choice element ([x]) may take, and
//     the resource types a Reference may point to when its target
//     profiles are base R4 resource definitions;
//   - required bindings to value sets, checked through [Codes] (stored
//     value sets, $validate-code).
//
// The differential of a profile is checked (its snapshot when it has no
// differential), then that of its baseDefinition when that is a stored
// profile too, up to [MaxChain] profiles; the base R4 definition itself
// is the base validator's (internal/fhir). Not checked, and said so in
// an information issue: sliced elements (sliceName, "a:b" ids),
// invariants (constraint FHIRPath), extensible and preferred bindings,
// target profiles that are not base resource definitions, and
// contentReference elements.
//
// # Security invariants
//
//   - Issues name element paths (with indexes), types and counts, never
//     a value of the resource or of the profile.
//   - The work is bounded: at most [MaxElements] elements per profile,
//     [MaxChain] profiles per chain, [MaxIssues] issues.
package profile
