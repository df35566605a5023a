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
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	source     TEXT COLLATE "C" NOT NULL,
	actor      TEXT COLLATE "C" NOT NULL,      -- account id of who ingested
	started    BIGINT NOT NULL,
	finished   BIGINT NOT NULL DEFAULT 0,
	state      TEXT COLLATE "C" NOT NULL DEFAULT 'running',
	events     BIGINT NOT NULL DEFAULT 0,
	alerts     BIGINT NOT NULL DEFAULT 0,
	suppressed BIGINT NOT NULL DEFAULT 0,
	bytes      BIGINT NOT NULL DEFAULT 0 -- ingested input, uncompressed
);
CREATE INDEX monitor_runs_started ON monitor_runs (started);

-- The ingested data itself: the context Bundle and the raw event
-- lines, compressed, in sealed chunks, in order (seq) per run.
CREATE TABLE monitor_data (
	run  TEXT COLLATE "C" NOT NULL,
	seq  BIGINT NOT NULL,
	kind TEXT COLLATE "C" NOT NULL,           -- 'context' or 'events'
	body BYTEA NOT NULL,           -- sealed, compressed
	PRIMARY KEY (run, seq)
);

-- Alerts, deduplicated by dedup (a MAC of source and monitor.Alert.Key).
-- suppressed is the id of the suppression rule that matched, '' if none.
CREATE TABLE monitor_alerts (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	dedup      BYTEA NOT NULL UNIQUE,
	source     TEXT COLLATE "C" NOT NULL,
	category   TEXT COLLATE "C" NOT NULL,
	severity   TEXT COLLATE "C" NOT NULL,
	score      DOUBLE PRECISION NOT NULL,
	status     TEXT COLLATE "C" NOT NULL DEFAULT 'open',
	suppressed TEXT COLLATE "C" NOT NULL DEFAULT '',
	assignee   TEXT COLLATE "C" NOT NULL DEFAULT '',
	created    BIGINT NOT NULL,
	updated    BIGINT NOT NULL,
	first_at   BIGINT NOT NULL,
	last_at    BIGINT NOT NULL,
	body       BYTEA NOT NULL      -- sealed monitor.Alert JSON
);
CREATE INDEX monitor_alerts_score ON monitor_alerts (score DESC, id);
CREATE INDEX monitor_alerts_updated ON monitor_alerts (updated);

-- The patients an alert covers, as MACs of (source, patient ref).
CREATE TABLE monitor_alert_patients (
	alert   TEXT COLLATE "C" NOT NULL,
	patient BYTEA NOT NULL,
	PRIMARY KEY (alert, patient)
);
CREATE INDEX monitor_alert_patients_patient ON monitor_alert_patients (patient);

-- Triage notes, sealed like the break-the-glass notes.
CREATE TABLE monitor_notes (
	id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	alert   TEXT COLLATE "C" NOT NULL,
	author  TEXT COLLATE "C" NOT NULL,
	created BIGINT NOT NULL,
	body    BYTEA NOT NULL         -- sealed
);
CREATE INDEX monitor_notes_alert ON monitor_notes (alert, created);

-- Suppression rules. The scope is matched by MACs (NULL: any user, any
-- patient) and category ('' any); body is the sealed rule as written
-- (the references in the clear and the reason).
CREATE TABLE monitor_suppressions (
	id       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	source   TEXT COLLATE "C" NOT NULL,
	user_mac BYTEA,
	patient  BYTEA,
	category TEXT COLLATE "C" NOT NULL DEFAULT '',
	author   TEXT COLLATE "C" NOT NULL,
	created  BIGINT NOT NULL,
	alert    TEXT COLLATE "C" NOT NULL DEFAULT '', -- the alert whose false positive made it
	body     BYTEA NOT NULL           -- sealed
);
CREATE INDEX monitor_suppressions_source ON monitor_suppressions (source);

-- Cursors of continuous sources (the own audit log: the next leaf).
CREATE TABLE monitor_cursors (
	name     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	pos      BIGINT NOT NULL,
	updated  BIGINT NOT NULL
);
