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
// searched always agree. Token, string, reference, uri, number,
// quantity and composite terms carry a Key that the caller blind-indexes
// (keyed PRF, truncated; DESIGN §5) before storage. Non-identifying dates are stored as plaintext ranges;
// identifying dates (Patient.birthDate) become keys for their year, month
// and day. Equality searches one key; a range (gt, lt, ge, le, sa, eb, ap)
// is cut into the fewest whole days, months and years and searches their
// keys (birthdate.go), so ranges need no plaintext date and no new key.
//
// # Parameter types and modifiers
//
// Numbers and quantities (number.go, quantity.go) are never plaintext:
// a value, truncated to 6 significant digits, is indexed as blind keys
// of its decade and of its 1..6-digit prefixes, and a comparison (eq ne
// gt lt ge le sa eb ap, implicit precision on eq, ne, ap) is the fewest
// such buckets covering the values it accepts. Quantities have key
// families for any unit, the unit code, and system|code (UCUM converted
// by powers of ten only). Composites (composite.go) pair the code and
// value of one repetition in one key; those over the resource itself
// (one repetition) are a conjunction of the code and value parameters,
// and combo-* the union of its parts, with no keys of their own. URIs (uri.go) are exact keys, with
// path-prefix keys for :below; :above needs none. _tag, _security,
// _profile and _source (meta.go) are parameters of every type. Token
// :text, :of-type, :in and :not-in, and system| (tokenmods.go, and the
// record layer for ValueSet expansion). Refused: _text, _content,
// :contains (string, uri), token :above and :below.
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
// For numbers and quantities,
// which values share a sign and decade and their first 1..6 significant
// digits (per parameter and unit family), and, to an observer of many
// range queries, the order of those buckets; for composites, which code
// goes with which value bucket; for uris, which share a path prefix; for
// token :text, which displays share a normalised prefix.
// Plaintext date ranges (clinical dates)
// and the number of values per resource are visible. Keys never leave the
// process unhashed. ADR 0031 records these choices.
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
//   - :contains, _text, _content, and anything else that would need a
//     scan of decrypted data or a word index is refused rather than
//     emulated. _sort by a hashed value is the one bounded exception: the
//     caller (internal/record) orders the decrypted matches the searcher
//     may read, at most 1,000 of them ([SortSpec], ADR 0038).
//
// A [Registry] is immutable after New and safe for concurrent use.
package search
