// Package bulk runs FHIR Bulk Data exports (HL7 Bulk Data Access IG v2,
// $export) for SMART Backend Services clients. The HTTP side is in
// internal/httpapi/bulk.go; the design is ADR 0049.
//
// # What an export is
//
// An export is a disclosure of what the client's searches would return,
// for the purpose of use registered with the client (smart.Client.Purpose).
// It runs the record's own searches (record.Service.Search and
// CompartmentSearch) as the client, with a guard that decides every read
// as authz.Export: narrowing inside the query, the per-match decision,
// masking, patient Consents (consent action "disclose", the registered
// purpose), sensitivity labels and 42 CFR Part 2 all apply, and the
// default policies do not exempt service credentials from them for this
// action. No second policy engine: what a search would hide, an export
// leaves out.
//
// # Security invariants
//
//   - Only a SMART backend client with a registered purpose starts an
//     export; only that client sees its status and files (anyone else:
//     ErrNotFound).
//   - Output files and the kick-off parameters are sealed under a key of
//     the job's own (keys.ExportKey, wrapped under the KEK); deleting or
//     expiring the job destroys the wrapped key and the files.
//   - Every exported patient is named in "$export" audit events with the
//     client as agent and the purpose; kick-off, status, download and
//     delete are audited, refusals included. The error file counts what
//     was left out and never names a patient or a resource.
//   - A job is written by the one process whose claim (row lease) holds;
//     a process that lost it writes nothing more (ErrLeaseLost). A job
//     whose process died is run again after its lease, and failed after
//     MaxAttempts runs: never left running forever.
//   - Memory is bounded: output is streamed page by page into per-type
//     buffers sealed as files at Options.FileBytes.
//
// # De-identification
//
// Transformer is the seam for package deid: chosen per job by the
// phivault-specific kick-off parameter _deidentify=safe-harbor through
// Options.Transformers; without one the parameter is refused (400).
package bulk
