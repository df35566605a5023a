// Package export writes the files the web UI hands out for privacy
// rights and reviews: a table as CSV, and a document of headed sections
// and tables as PDF. The patient portal (the record summary, the
// accounting of disclosures) and the console (an audit search) use it;
// it knows no audience, reads nothing and records nothing: the caller
// audits each export before writing it.
//
// # Security invariants
//
//   - CSV cells that a spreadsheet would run as a formula (those
//     beginning with =, +, -, @, a tab or a carriage return) are
//     prefixed with a single quote (OWASP "CSV injection"), so opening
//     an exported audit trail never runs what an attacker put in a name
//     or a query.
//   - PDFs use the standard core fonts (nothing is embedded or fetched)
//     and are written uncompressed: their text can be checked with any
//     text editor, and their size is bounded by the callers' page
//     limits. Characters outside Windows-1252 are written as "?".
//   - Nothing here logs: the content is PHI.
//
// # Concurrency
//
// The functions are safe for concurrent use; each call writes one file.
package export
