// Package ownlog is the source of privacy monitoring that reads
// phivault's own audit log (issue 16 item 3, ADR 0047): it converts
// audit events into monitoring events ([Convert]), builds the
// directory and care relationships of the users and patients it meets
// from phivault's own records ([Loader]), and follows the log with a
// long-lived engine ([Follower]).
//
// # Security invariants
//
//   - Monitoring events carry references, pseudonymous ids, addresses
//     and session ids only, as the audit events do; names and addresses
//     of people stay in the in-memory [monitor.Directory], which is
//     bounded and never logged.
//   - The loader reads records through the authorizer's privileged read
//     path handed to it by the composition root (no decision: it is a
//     system duty, like authorization itself); what it derives is kept
//     in memory only.
//   - The follower advances its cursor only after the alerts of the
//     events before it are stored: a crash repeats work, it never skips
//     an event.
package ownlog
