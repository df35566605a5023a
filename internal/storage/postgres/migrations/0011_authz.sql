-- Authorization (issue: Cedar policies). Break-the-glass grants, the
-- review queue a privacy officer closes, high-priority alerts, and the
-- versions of the policy set in force. Identifiers only: patient
-- references are the pseudonymous "Patient/<id>" owners of resources;
-- the free-text reason of a grant is sealed with that patient's data
-- key (note), never stored in clear. Timestamps are unix microseconds
-- UTC; booleans are BOOLEAN.

CREATE TABLE authz_grants (
	id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	user_id TEXT COLLATE "C" NOT NULL,
	patient TEXT COLLATE "C" NOT NULL,
	reason  TEXT COLLATE "C" NOT NULL, -- a code (ETREAT...), not free text
	note    BYTEA,             -- free text sealed with the patient's key
	created BIGINT  NOT NULL,
	expires BIGINT  NOT NULL
);
CREATE INDEX authz_grants_user ON authz_grants (user_id, expires);

CREATE TABLE authz_reviews (
	id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	grant_id  TEXT COLLATE "C" NOT NULL REFERENCES authz_grants (id),
	user_id   TEXT COLLATE "C" NOT NULL,
	patient   TEXT COLLATE "C" NOT NULL,
	reason    TEXT COLLATE "C" NOT NULL,
	created   BIGINT  NOT NULL,
	expires   BIGINT  NOT NULL,
	closed    BOOLEAN NOT NULL,
	closed_by TEXT COLLATE "C" NOT NULL,
	closed_at BIGINT  NOT NULL,
	outcome   TEXT COLLATE "C" NOT NULL,
	close_note BYTEA -- the privacy officer's note, sealed with the patient's key; NULL without one
);
CREATE INDEX authz_reviews_open ON authz_reviews (closed, created);

CREATE TABLE authz_alerts (
	id       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	kind     TEXT COLLATE "C" NOT NULL,
	priority TEXT COLLATE "C" NOT NULL,
	user_id  TEXT COLLATE "C" NOT NULL,
	patient  TEXT COLLATE "C" NOT NULL,
	ref      TEXT COLLATE "C" NOT NULL,
	created  BIGINT  NOT NULL
);
CREATE INDEX authz_alerts_created ON authz_alerts (created);

-- One row per policy set that came into force (content hash).
CREATE TABLE authz_policy_versions (
	seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hash    TEXT COLLATE "C" NOT NULL,
	source  TEXT COLLATE "C" NOT NULL,
	created BIGINT  NOT NULL
);
