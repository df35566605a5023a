// Package terminology implements the FHIR R4 terminology operations
// over stored CodeSystem and ValueSet resources: CodeSystem/$lookup,
// ValueSet/$expand, ValueSet/$validate-code and CodeSystem/$validate-code.
//
// It is pure domain logic: it parses terminology resources and
// Parameters, expands and checks codes. It finds the code systems and
// value sets a value set refers to through a [Source], which the caller
// implements over what the requesting user may read (record.Service):
// a resource the user may not read is absent here, so it cannot
// influence a result.
//
// # Supported subset
//
//   - ValueSet.compose.include and exclude with a concept list, a whole
//     stored code system (system without concepts or filters), imported
//     value sets (include.valueSet, intersected as R4 defines), and the
//     filters is-a, descendent-of, is-not-a (on the concept hierarchy:
//     nested concepts or the parent property), = and in (on code,
//     display or a concept property).
//   - A value set without compose but with a stored expansion is
//     answered from that expansion.
//   - The text filter of $expand (case-insensitive substring of code or
//     display) and count/offset paging.
//
// # Security invariants
//
//   - Every cost input can drive is bounded: an expansion holds at most
//     [MaxExpansion] codes before paging (larger is [ErrTooCostly]),
//     value set imports nest at most [MaxDepth] deep, a Parameters
//     resource holds at most [MaxParams] parameters.
//   - Error messages name parameters, element paths and counts, never a
//     code, display or other value from the input or a stored resource.
package terminology
