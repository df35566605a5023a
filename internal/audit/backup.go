package audit

// Scheduled backups and restore drills (issue 17, ADR 0051). The agent
// is the system ("phivault", client the process); Entities name the
// backup "Backup/<name>" (an object name, no PHI); Policies carry
// "destination=<store>" (endpoint, bucket, prefix or directory; never a
// credential) and the figures of the step. A failure is the same action
// with OutcomeError.
const (
	// ActionBackup is a backup taken by the schedule or by "backup
	// create" (then also "host=<h>", "operator=<os user>"): Policies
	// "destination=<d>", "bytes=<n>".
	ActionBackup Action = "backup"
	// ActionBackupPrune is the deletion of a backup by retention:
	// Policies "destination=<d>", "retention=<daily>/<weekly>/<monthly>".
	ActionBackupPrune Action = "backup-prune"
	// ActionBackupDrill is a restore drill: Policies "destination=<d>",
	// "recovery_ms=<n>", "point_ms=<n>".
	ActionBackupDrill Action = "backup-drill"
)
