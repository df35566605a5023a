// Package privacy holds the privacy office's audited changes that are
// not authorization's: a patient's access reports ("I don't recognise
// this access", about one event of their access history) and their
// closing by the privacy officer. The front end (the patient portal)
// parses the forms and renders; [Reports] owns the use-case.
//
// # Transactions (ADR 0024)
//
// A report and its closing are written through the store's unit of
// work ([Updater], over the small [Tx] this package declares): the row
// and its sealed audit event commit in ONE transaction, or neither
// does. The list of open reports is read outside a transaction; its
// read event (ActionAccessReportRead) is appended before any comment is
// opened.
//
// # Security invariants
//
//   - The comment and the closing note may hold PHI: they are sealed
//     with the patient's data key ([Notes], the record service) before
//     they reach the store, and never logged or put in an event or an
//     error.
//   - A report names the reporter's own record only: the caller (the
//     portal) derives the patient from the account's FHIR user link and
//     checks that the reported event touched it.
//   - Every change, and every read of the open reports, is audited; a
//     failure to audit fails the operation (an error wrapping
//     audit.ErrUnavailable) and, for a change, writes nothing.
//   - A report is closed at most once: closing a closed one is an error
//     wrapping storage.ErrConflict, and records nothing.
//
// # Concurrency
//
// A [Reports] is safe for concurrent use.
package privacy
