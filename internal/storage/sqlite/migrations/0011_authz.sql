-- Authorization (issue: Cedar policies). Break-the-glass grants, the
-- review queue a privacy officer closes, high-priority alerts, and the
-- versions of the policy set in force. Identifiers only: patient
-- references are the pseudonymous "Patient/<id>" owners of resources;
-- the free-text reason of a grant is sealed with that patient's data
-- key (note), never stored in clear. Timestamps are unix microseconds
-- UTC; booleans are INTEGER 0/1.

CREATE TABLE authz_grants (
	id      TEXT    NOT NULL PRIMARY KEY,
	user_id TEXT    NOT NULL,
	patient TEXT    NOT NULL,
	reason  TEXT    NOT NULL, -- a code (ETREAT...), not free text
	note    BLOB,             -- free text sealed with the patient's key
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE INDEX authz_grants_user ON authz_grants (user_id, expires);

CREATE TABLE authz_reviews (
	id        TEXT    NOT NULL PRIMARY KEY,
	grant_id  TEXT    NOT NULL REFERENCES authz_grants (id),
	user_id   TEXT    NOT NULL,
	patient   TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	closed    INTEGER NOT NULL,
	closed_by TEXT    NOT NULL,
	closed_at INTEGER NOT NULL,
	outcome   TEXT    NOT NULL,
	close_note BLOB -- the privacy officer's note, sealed with the patient's key; NULL without one
);
CREATE INDEX authz_reviews_open ON authz_reviews (closed, created);

CREATE TABLE authz_alerts (
	id       TEXT    NOT NULL PRIMARY KEY,
	kind     TEXT    NOT NULL,
	priority TEXT    NOT NULL,
	user_id  TEXT    NOT NULL,
	patient  TEXT    NOT NULL,
	ref      TEXT    NOT NULL,
	created  INTEGER NOT NULL
);
CREATE INDEX authz_alerts_created ON authz_alerts (created);

-- One row per policy set that came into force (content hash).
CREATE TABLE authz_policy_versions (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	hash    TEXT    NOT NULL,
	source  TEXT    NOT NULL,
	created INTEGER NOT NULL
);
