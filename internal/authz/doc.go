// Package authz decides who may do what to which record, with Cedar
// policies (ADR 0011, docs/authorization.md).
//
// # Policies
//
// The default policy set and its schema are embedded
// (policies/default.cedar, policies/schema.cedarschema); *.cedar files
// in DATA/policies replace the defaults. [LoadPolicies] validates every
// policy against the schema and requires a unique @id; a policy
// annotated @conceal("true") makes its denials answer as "not found".
//
// # Decisions
//
// [Authorizer.Decide] builds the Cedar entities of one request — the
// user (roles, fhirUser, organization, department, care teams), the
// patient (care team, encounter participants, labels, VIP/employee
// flags) and the resource (type, compartment, labels, category) — from
// facts read through a [Source] (the record) and cached, and returns a
// [Decision] with the ids of the policies that decided.
// [Authorizer.Narrow] turns a search into a [Filter] the store applies
// inside its query. [BreakGlass] opens time-boxed [Grant]s; [Desk] is
// the review queue. [RunCases] evaluates policy test cases offline.
//
// # Security invariants
//
//   - Deny wins (Cedar: one matching forbid denies); nothing matching
//     denies ([PolicyNone]).
//   - Fail closed: an error while loading facts or evaluating a policy
//     is a denial (ErrUndecidable); a policy that errors is never
//     skipped into an allow.
//   - Facts come from stored data only, never from the request; caches
//     are invalidated by the record's writes of the fact types and
//     expire after [DefaultCacheTTL].
//   - Inside a write transaction ([WithoutIO]) decisions read no
//     storage: a miss is [ErrNeedsFacts] and the caller retries outside.
//   - Break-the-glass is a [Grant] value with an expiry, never a flag.
//   - Nothing here logs; errors carry references and policy ids, never
//     resource content, and parsers of untrusted input ([ParseConsent],
//     [ParseBreakGlass]) never echo it.
//
// # Concurrency
//
// An Authorizer, its [Bound] guards, [BreakGlass] and [Desk] are safe
// for concurrent use. [Policies] is immutable.
package authz
