// Package privacy holds the privacy office's audited changes and reads
// that are not authorization's: a patient's access reports ("I don't
// recognise this access", about one event of their access history) and
// their closing by the privacy officer ([Reports]); a patient's
// correction requests (HIPAA §164.526) and their decision
// ([Amendments]); and the trail of what the office and the patients
// take away or look up: staff lookups by name and the files made from
// audit events or from the record ([Trail]). The front ends (the
// portal, the console, the chart) parse the forms and render.
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
//     wrapping storage.ErrConflict, and records nothing. A correction
//     request is decided at most once, and a denial carries its reason.
//   - A correction request's texts (what is wrong, what it should say,
//     the decision's reason) are sealed like the comments; every listing
//     of them is audited before a text is opened.
//   - A staff lookup records the field searched and the accounts found,
//     never the text typed; an export records every event or record it
//     holds, before the file is written. A failure to record returns an
//     error wrapping audit.ErrUnavailable, and no result.
//
// # Concurrency
//
// [Reports], [Amendments] and [Trail] are safe for concurrent use.
package privacy
