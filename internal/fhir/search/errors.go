package search

import "errors"

// Sentinel errors of query parsing. Each error wraps exactly one; its text
// names the parameter (when it is a well-formed name) and what is wrong,
// never a value, so it is safe to send to the client in an
// OperationOutcome. All of them mean "answer 400".
var (
	// ErrUnknownParam means a parameter is not supported for the resource
	// type (and the request was not lenient: Prefer: handling=lenient).
	ErrUnknownParam = errors.New("search: unknown parameter")

	// ErrUnsupported means a known parameter was used with a modifier,
	// prefix or feature phivault does not implement (:contains, sa, eb,
	// ap, chains deeper than MaxChainDepth, _summary other than count,
	// sorting by a non-date parameter).
	ErrUnsupported = errors.New("search: unsupported search feature")

	// ErrInvalidValue means a parameter value is malformed: a bad date,
	// id, count, an empty value, a token "system|" without code.
	ErrInvalidValue = errors.New("search: invalid parameter value")

	// ErrTooComplex means the query exceeds a bound: MaxParams,
	// MaxAlternatives, MaxValueLen, MaxChainSearches or MaxIncludes.
	ErrTooComplex = errors.New("search: query too complex")
)
