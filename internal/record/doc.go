// Package record is the patient record: FHIR resources stored encrypted,
// indexed blindly, versioned and audited. It is the domain layer between
// the HTTP API (which speaks FHIR REST) and storage (which sees only
// ciphertext and keyed hashes).
//
// # Security invariants
//
//   - Every resource body is sealed with its owner's data key before it
//     reaches storage; the associated data binds type, id, version and
//     owner, so a row moved onto another record or version does not open.
//   - Search-index values are keyed hashes (blind indexes) computed by the
//     keyring; only non-identifying clinical dates are stored in clear.
//   - A write and its audit event commit in one transaction, and the
//     event commits to what was written (ledger.go, ADR 0016). A read
//     returns no PHI until its audit event is durable (fail closed).
//   - Error messages never echo resource content or search values.
package record
