-- Scheduled backups and restore drills (issue 17, ADR 0051). Times are
-- unix microseconds UTC. No secret is stored: destination is the
-- store's String (endpoint, bucket, prefix or a directory), error is a
-- bounded message written without credentials. Every row also has an
-- audit event, appended in the same transaction.

-- One scheduled (or manual) backup: outcome 'success' or 'failure';
-- pruned counts the old backups retention deleted after it.
CREATE TABLE backup_runs (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name        TEXT COLLATE "C" NOT NULL,          -- the backup's object name, '' if none was written
	destination TEXT COLLATE "C" NOT NULL,
	started     BIGINT NOT NULL,
	finished    BIGINT NOT NULL,
	size        BIGINT NOT NULL DEFAULT 0, -- bytes stored (encrypted)
	pruned      BIGINT NOT NULL DEFAULT 0,
	outcome     TEXT COLLATE "C" NOT NULL,
	error       TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX backup_runs_started ON backup_runs (outcome, started);

-- One restore drill: a backup restored into a scratch place and checked.
-- recovery_ms is how long the restore took (the recovery time the drill
-- proves); point_ms how old the backup was when drilled (the recovery
-- point it proves).
CREATE TABLE backup_drills (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	backup      TEXT COLLATE "C" NOT NULL,
	started     BIGINT NOT NULL,
	finished    BIGINT NOT NULL,
	recovery_ms BIGINT NOT NULL DEFAULT 0,
	point_ms    BIGINT NOT NULL DEFAULT 0,
	outcome     TEXT COLLATE "C" NOT NULL,
	error       TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX backup_drills_started ON backup_drills (outcome, started);
CREATE INDEX backup_drills_backup ON backup_drills (backup, started);
