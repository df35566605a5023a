// Package tlog runs the audit log's transparency side (ADR 0010, ADR
// 0014, ADR 0016) as one component: the integrator that turns durable
// audit records into leaves of a signed Merkle tree, the watch that
// notices records deleted before integration, the reader behind /log,
// the checkpoints kept outside the database, full verifications and
// their daily loop, and the operator's acceptance of a log whose kept
// checkpoint was lost.
//
// Invariants:
//   - The integrator and the watch run in goroutines started by [Open]
//     and stopped by [Log.Close], which integrates what is left first
//     (bounded), so every event this process recorded is under a
//     signed checkpoint.
//   - Every audit record appended through [Log.Appender] or inside a
//     transaction of [Log.Store] is followed by the watch until it is
//     integrated; one that vanishes raises the alarm ([Log.Alarm]).
//   - Only a verification with the log's own key that ran to its end
//     (passed, or found a divergence) is recorded.
//   - Accepting a checkpoint ([Log.Accept]) is audited with a high alert
//     in one transaction.
package tlog
