// Package search implements the FHIR search parameters phivault supports:
// extraction of values from resources, their normalisation into index
// terms, query parsing, and the Patient compartment.
//
// # Registry
//
// [New] loads the vendored R4 SearchParameter bundle and Patient
// compartment definition (package spec) and compiles, once, the R4
// FHIRPath expression of every supported parameter with a small evaluator
// (fhirpath.go documents the subset). The supported parameters are one
// table in registry.go; every other parameter is unknown.
//
// # Terms: the single definition of normalisation
//
// [IndexTerms] (indexing) and [Registry.ParseQuery] (querying) build
// [Term] values with the same helpers, so what is indexed and what is
// searched always agree. Token, string and reference terms carry a Key
// that the caller blind-indexes (keyed PRF, truncated; DESIGN §5) before
// storage. Non-identifying dates are stored as plaintext ranges;
// identifying dates (Patient.birthDate) become keys for their year, month
// and day. Equality searches one key; a range (gt, lt, ge, le, sa, eb, ap)
// is cut into the fewest whole days, months and years and searches their
// keys (birthdate.go), so ranges need no plaintext date and no new key.
//
// # What the blind index leaks
//
// To someone holding the index but not the keys: which resources share a
// normalised value (equality patterns) and, for strings, which share a
// normalised prefix of each length up to [MaxPrefixRunes] (so the length
// of short values, and names that start alike, can be inferred from the
// number and overlap of prefix rows); for tokens, whether two resources
// share a code, with or without system; for birth dates, which patients
// share a year, a month or a day (a range query asks for many of those
// keys at once, which an observer of queries can recognise as a range).
// Plaintext date ranges (clinical dates)
// and the number of values per resource are visible. Keys never leave the
// process unhashed.
//
// # Chains and includes
//
// Chained parameters and _has ([Chain]) and _include/_revinclude
// ([Include]) are parsed here and resolved by the record layer as
// further searches through the same blind index, each narrowed by
// authorization for the same caller: a chain's inner search yields a
// bounded set of ids that becomes a reference or _id condition of the
// outer query; an include is a search by id (forward) or by reference
// (reverse) of the page's results. [Registry.References] reads the
// references an _include follows from a resource the caller was given;
// nothing is matched by reading decrypted data.
//
// # Security invariants
//
//   - No error text contains a value from the query or the resource. A
//     parameter name is echoed only if it looks like one; a chain's
//     names only once validated.
//   - Every cost a query can drive is bounded: [MaxParams],
//     [MaxAlternatives], [MaxValueLen], [MaxCount], [MaxChainDepth],
//     [MaxChainSearches], [MaxIncludes]; extraction yields at most 4,096
//     values per resource and 32 prefix terms per string.
//   - :contains and _sort on string, token or reference parameters are
//     refused rather than emulated, so no query falls back to a scan of
//     decrypted data.
//
// A [Registry] is immutable after New and safe for concurrent use.
package search
