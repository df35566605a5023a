// Package schedule runs backups and restore drills inside serve (issue
// 17, ADR 0051): it takes a backup on its schedule (an interval, or a
// time of day), deletes old backups by grandfather-father-son retention
// ([backup.Prune]), drills a restore on its own schedule, records every
// run and drill, audits each backup, deletion and drill, and reports the
// state the console, the evidence and /metrics show ([Status]).
//
// # Who runs it
//
// On PostgreSQL one process of a fleet leads the duty (a database
// advisory lock, sqldb.Leader); the others wait. When a step is due is
// read from the records in the database, not from memory, so a restart
// or a change of leader neither skips nor repeats a backup.
//
// # Security invariants
//
//   - The schedule never sees a plaintext backup or a key: the engine
//     encrypts to the configured age recipients; drills use a dedicated
//     drill identity.
//   - No credential reaches a log line, an audit event, a record or an
//     error it stores: destinations are named by the store's String
//     (endpoint, bucket, prefix, or directory), and stored error text is
//     bounded and on one line.
//   - A deletion by retention is audited before the object is deleted;
//     the newest backup and the newest backup whose drill passed are
//     never deleted.
//   - Only backups this schedule recorded, at this destination, are
//     ever pruned: a backup taken by hand stays until an operator
//     deletes it.
package schedule
