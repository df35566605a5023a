// Package alerts stores and triages the alerts of privacy and intrusion
// monitoring (issue 16, ADR 0046), and ingests another system's access
// log into them.
//
// # Security invariants
//
//   - Every alert body, triage note, suppression reason and every byte of
//     ingested data is sealed with the audit log key (through
//     [Sealer], [KeySealer]; see seal.go for why) before it reaches the
//     store, bound to its kind, id and part. Dedup keys, user and patient references
//     reach the store only as keyed MACs (the blind index PRF), prefixed
//     by a domain and the source so that another system's "Patient/1" is
//     never phivault's.
//   - Only a privacy officer reads or changes alerts and ingests logs; a
//     security administrator reads and triages the attack categories
//     (credential, mfa-failure, token, enumeration, denied,
//     session-hijack) and nothing else. Everyone else is refused with
//     [ErrForbidden], and the refusal is audited.
//   - Every read and change is appended to the audit log, in the
//     transaction of the change, and before a sealed value is opened for
//     the caller; an error wrapping audit.ErrUnavailable means nothing
//     was done.
//   - Errors never hold PHI: no name, no patient or practitioner
//     reference of an ingested source, no note text.
//
// # Deduplication and suppression
//
// [Service.Save] upserts by the alert's Key: a later run with the same
// key updates score, severity, explanation and evidence (merging the
// patients and accesses seen) and keeps status, assignee and notes. An
// alert matched by a suppression rule is stored with the rule's id and
// counted, not dropped: it is not in the queue unless asked for, and a
// privacy officer can always see what a rule hides. A confirmed alert is
// never hidden by a later rule.
package alerts
