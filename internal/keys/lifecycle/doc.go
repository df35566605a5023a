// Package lifecycle runs the life of phivault's keys after they are
// created: KEK and DEK rotation (DESIGN §5, docs/adr/0002), the re-wrap
// after a Vault transit rotation, and the KEK epoch job that makes
// crypto-shredding final (docs/adr/0015), with its background loop in
// "serve" and the erasure status the operator reads. The cryptography is
// package keys'; this package orders the steps, keeps the database and
// the key file consistent through crashes, and audits each operation.
//
// A [Manager] is built by the composition root with only what it uses:
// the process's [keys.Keyring], the key and version scans of the store
// ([Store]), the KEK epoch store ([storage.EpochStore]), the database's
// compaction and integrity alerts ([Compactor], [Alerts]), the audit
// log's sealer ([Sealer]), a logger and the process's lease holder name.
// It never sees the SQL store itself.
//
// # Rotation
//
// [Manager.RotateKEK] adds a key to the key file and re-wraps every live
// key record under it, one transaction per record; the old keys stay in
// the file, so every wrap opens at every moment. It resumes by KEKID and
// refuses to run while a KEK epoch is in progress (an epoch writes the
// key file and fences keys). [Manager.RotateDEKs] gives owners a new
// primary data key, re-seals every version not sealed with it (resumable
// by Tink's key-id prefix) and only then destroys the old keys. With a
// KMS KEK, rotation happens in the KMS ([ErrKMSRotation]) and
// [Manager.RewrapAll] moves every record to the newest KMS key version.
//
// # KEK epochs
//
// $erase destroys a patient's wrapped data key, but older copies of it
// stay in free pages, the WAL, dead tuples, replicas and backups, and
// open with the key file. Erasure is final when every KEK key that ever
// wrapped the destroyed key is destroyed. [Manager.RunKEKEpoch] runs an
// epoch through its states (adding, rewrapping, retained, complete:
// epoch.go): it adds a KEK key, fences the others off, re-wraps every
// live record under the new key, checks each under that key alone, keeps
// the retired keys for keys.shred_retention_days, then removes them from
// the key file and compacts the database. Whether an epoch is owed is
// derived, never remembered: a shredded record keeps the id of the KEK
// key that last wrapped it, and [Manager.ErasureStatus] counts erasures
// pending, retained and final from that and the key file.
//
// [Manager.RunKEKEpochs] is the loop "serve" runs: at start (resuming an
// interrupted epoch), after every erasure of this process ([Manager.Wake]
// is the record service's erase hook), hourly; and every few seconds it
// reloads the key file when an epoch run by another process retired this
// process's primary or destroyed a key it still holds. [DestroyedKEKs]
// lets the keyring adopt such a file at the first record it cannot open.
//
// # Invariants
//
//   - Nothing is destroyed while a live key record depends on it: a KEK
//     key leaves the key file only after every live record was re-wrapped
//     and opened under the new key alone, a count under the epoch lock
//     found none left under another id, and a last scan before the
//     destruction found none under the keys destroyed. A crash at any
//     step leaves every live record openable, and a rerun resumes.
//   - The fence comes before the re-wrap: once an epoch retires a key id,
//     no key record may be stored under it (storage.ErrRetiredKEK), so no
//     new record can appear under a key about to be destroyed.
//   - One process runs the epoch job at a time, across a fleet: a lease
//     (holder and heartbeat on the newest epoch row, epochLease) taken
//     under the epoch lock and re-checked at every step ([ErrEpochBusy],
//     [ErrEpochLost]).
//   - A live key record that opens under no key of the key file (planted,
//     copied from another owner, damaged) protects nothing: the job skips
//     it with an integrity alarm (a log line every time; once per record
//     an audit event and a high-priority alert, at most maxKeyRowAlarms
//     per run) instead of stalling the erasures. A record that opens
//     under any key of the file, retired ones included, is never skipped:
//     the job fails and destroys nothing.
//   - Every KEK the jobs add or reload is installed in this process's
//     keyring at once, so this process wraps new keys under the key in
//     force.
//   - Every operation is audited: key-rotate (kek, dek, kms-rewrap),
//     key-epoch (retained, complete with the destroyed ids), and
//     key-row-tampered for each tampered record named.
//   - No key material appears in an error or log line (the keys types log
//     without secrets); the alarm of a tampered record sanitises the owner
//     it names (length, UTF-8, control characters) before logging it.
//
// # Concurrency and lifetime
//
// A Manager holds no goroutine and nothing to close. RunKEKEpochs is the
// one long-running call: its caller (the "serve" command) owns it and
// stops it by cancelling ctx. The rotations and RunKEKEpoch run online,
// beside serving processes, one short transaction at a time. The epoch
// lease tells processes apart by their holder name, not goroutines: one
// Manager runs at most one epoch job at a time (RunKEKEpochs in "serve",
// RunKEKEpoch in the operator's command).
package lifecycle
