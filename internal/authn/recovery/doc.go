// Package recovery makes and checks single-use MFA recovery codes, the
// way back in for a workforce user who has lost their authenticator.
//
// # Codes
//
// [Generate] returns [Count] codes, each 80 bits from crypto/rand shown as
// sixteen Crockford base32 characters in four groups, "7G2M-QX4D-1R9B-ZK0E".
// Crockford's alphabet leaves out I, L, O and U, so nothing a user copies
// from paper is ambiguous, and [Match] reads I and L as 1 and O as 0, any
// case, with or without dashes and spaces.
//
// # Storage
//
// Only SHA-256 of the normalised code (with a domain-separation prefix) is
// stored. A slow password hash would add nothing: a code holds 80 random
// bits, so even an attacker with the hashes must try about 2^79 SHA-256
// computations per code, and a slow hash would only make every login
// attempt (which checks all stored hashes) expensive for us.
//
// # Security invariants
//
//   - Each code works once: [Match] returns the index of the matching hash
//     and the caller deletes that hash in the same transaction as the
//     login, before answering (a compare-and-delete, so two concurrent
//     uses of one code cannot both succeed).
//   - [Match] compares the input against every stored hash in constant
//     time, without stopping at the first match, so timing reveals
//     neither which code matched nor how many are left.
//   - Input is capped at [MaxInput] bytes before any work, and anything
//     that does not normalise to sixteen Crockford characters is refused.
//   - Codes never appear in logs or errors: [Code] redacts itself except
//     through [Code.Reveal], which is for the one screen that shows them.
//
// [Generate] and [Match] are safe for concurrent use.
package recovery
