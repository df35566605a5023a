-- Scheduled backups and restore drills (issue 17, ADR 0051). Times are
-- unix microseconds UTC. No secret is stored: destination is the
-- store's String (endpoint, bucket, prefix or a directory), error is a
-- bounded message written without credentials. Every row also has an
-- audit event, appended in the same transaction.

-- One scheduled (or manual) backup: outcome 'success' or 'failure';
-- pruned counts the old backups retention deleted after it.
CREATE TABLE backup_runs (
	id          TEXT NOT NULL PRIMARY KEY,
	name        TEXT NOT NULL,          -- the backup's object name, '' if none was written
	destination TEXT NOT NULL,
	started     INTEGER NOT NULL,
	finished    INTEGER NOT NULL,
	size        INTEGER NOT NULL DEFAULT 0, -- bytes stored (encrypted)
	pruned      INTEGER NOT NULL DEFAULT 0,
	outcome     TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backup_runs_started ON backup_runs (outcome, started);

-- One restore drill: a backup restored into a scratch place and checked.
-- recovery_ms is how long the restore took (the recovery time the drill
-- proves); point_ms how old the backup was when drilled (the recovery
-- point it proves).
CREATE TABLE backup_drills (
	id          TEXT NOT NULL PRIMARY KEY,
	backup      TEXT NOT NULL,
	started     INTEGER NOT NULL,
	finished    INTEGER NOT NULL,
	recovery_ms INTEGER NOT NULL DEFAULT 0,
	point_ms    INTEGER NOT NULL DEFAULT 0,
	outcome     TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backup_drills_started ON backup_drills (outcome, started);
CREATE INDEX backup_drills_backup ON backup_drills (backup, started);
