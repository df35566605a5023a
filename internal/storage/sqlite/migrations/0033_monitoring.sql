-- Privacy and intrusion monitoring (issue 16, ADR 0046). Times are unix
-- microseconds UTC. Everything that may hold PHI or another system's
-- ids is sealed by the caller with the audit log key (body,
-- chunks, notes, reasons); what stays in the clear is what the triage
-- queue sorts and filters on (source name, category, severity, score,
-- status, assignee account id, times) and keyed MACs (blind index PRF)
-- of the dedup key and of patient and user references, which match
-- without revealing them.

-- One ingest of another system's access log (or a run of the own-log
-- source). finished = 0 while it runs; state running, done or failed.
CREATE TABLE monitor_runs (
	id         TEXT NOT NULL PRIMARY KEY,
	source     TEXT NOT NULL,
	actor      TEXT NOT NULL,      -- account id of who ingested
	started    INTEGER NOT NULL,
	finished   INTEGER NOT NULL DEFAULT 0,
	state      TEXT NOT NULL DEFAULT 'running',
	events     INTEGER NOT NULL DEFAULT 0,
	alerts     INTEGER NOT NULL DEFAULT 0,
	suppressed INTEGER NOT NULL DEFAULT 0,
	bytes      INTEGER NOT NULL DEFAULT 0 -- ingested input, uncompressed
);
CREATE INDEX monitor_runs_started ON monitor_runs (started);

-- The ingested data itself: the context Bundle and the raw event
-- lines, compressed, in sealed chunks, in order (seq) per run.
CREATE TABLE monitor_data (
	run  TEXT NOT NULL,
	seq  INTEGER NOT NULL,
	kind TEXT NOT NULL,           -- 'context' or 'events'
	body BLOB NOT NULL,           -- sealed, compressed
	PRIMARY KEY (run, seq)
);

-- Alerts, deduplicated by dedup (a MAC of source and monitor.Alert.Key).
-- suppressed is the id of the suppression rule that matched, '' if none.
CREATE TABLE monitor_alerts (
	id         TEXT NOT NULL PRIMARY KEY,
	dedup      BLOB NOT NULL UNIQUE,
	source     TEXT NOT NULL,
	category   TEXT NOT NULL,
	severity   TEXT NOT NULL,
	score      REAL NOT NULL,
	status     TEXT NOT NULL DEFAULT 'open',
	suppressed TEXT NOT NULL DEFAULT '',
	assignee   TEXT NOT NULL DEFAULT '',
	created    INTEGER NOT NULL,
	updated    INTEGER NOT NULL,
	first_at   INTEGER NOT NULL,
	last_at    INTEGER NOT NULL,
	body       BLOB NOT NULL      -- sealed monitor.Alert JSON
);
CREATE INDEX monitor_alerts_score ON monitor_alerts (score DESC, id);
CREATE INDEX monitor_alerts_updated ON monitor_alerts (updated);

-- The patients an alert covers, as MACs of (source, patient ref).
CREATE TABLE monitor_alert_patients (
	alert   TEXT NOT NULL,
	patient BLOB NOT NULL,
	PRIMARY KEY (alert, patient)
);
CREATE INDEX monitor_alert_patients_patient ON monitor_alert_patients (patient);

-- Triage notes, sealed like the break-the-glass notes.
CREATE TABLE monitor_notes (
	id      TEXT NOT NULL PRIMARY KEY,
	alert   TEXT NOT NULL,
	author  TEXT NOT NULL,
	created INTEGER NOT NULL,
	body    BLOB NOT NULL         -- sealed
);
CREATE INDEX monitor_notes_alert ON monitor_notes (alert, created);

-- Suppression rules. The scope is matched by MACs (NULL: any user, any
-- patient) and category ('' any); body is the sealed rule as written
-- (the references in the clear and the reason).
CREATE TABLE monitor_suppressions (
	id       TEXT NOT NULL PRIMARY KEY,
	source   TEXT NOT NULL,
	user_mac BLOB,
	patient  BLOB,
	category TEXT NOT NULL DEFAULT '',
	author   TEXT NOT NULL,
	created  INTEGER NOT NULL,
	alert    TEXT NOT NULL DEFAULT '', -- the alert whose false positive made it
	body     BLOB NOT NULL           -- sealed
);
CREATE INDEX monitor_suppressions_source ON monitor_suppressions (source);

-- Cursors of continuous sources (the own audit log: the next leaf).
CREATE TABLE monitor_cursors (
	name     TEXT NOT NULL PRIMARY KEY,
	pos      INTEGER NOT NULL,
	updated  INTEGER NOT NULL
);
