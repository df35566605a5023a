-- phivault schema v1 (SQLite). No column holds plaintext PHI: bodies are
-- ciphertext, search values are keyed hashes or date ranges, ids are
-- pseudonymous. Timestamps are unix microseconds UTC. Text compares
-- bytewise (BINARY), like COLLATE "C" on PostgreSQL.

-- The current pointer of each resource.
CREATE TABLE resources (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	owner        TEXT    NOT NULL,
	deleted      INTEGER NOT NULL,
	last_updated INTEGER NOT NULL,
	PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE INDEX resources_type_updated ON resources (type, last_updated);
CREATE INDEX resources_owner ON resources (owner);

-- Every version, append-only except for DEK rotation rewriting ciphertext.
CREATE TABLE resource_versions (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	owner        TEXT    NOT NULL,
	last_updated INTEGER NOT NULL,
	deleted      INTEGER NOT NULL,
	ciphertext   BLOB,
	PRIMARY KEY (type, id, version)
);
CREATE INDEX resource_versions_updated ON resource_versions (last_updated);
CREATE INDEX resource_versions_type_updated ON resource_versions (type, last_updated);

-- Blind index of current versions: h for token/string/reference values,
-- [lo, hi] for dates. The trailing id makes the lookups covering.
CREATE TABLE search_index (
	type  TEXT    NOT NULL,
	id    TEXT    NOT NULL,
	param TEXT    NOT NULL,
	h     BLOB,
	lo    INTEGER,
	hi    INTEGER
);
CREATE INDEX search_index_hash ON search_index (type, param, h, id) WHERE h IS NOT NULL;
CREATE INDEX search_index_date ON search_index (type, param, lo, hi, id) WHERE h IS NULL;
CREATE INDEX search_index_resource ON search_index (type, id);

-- Wrapped data-encryption keys; wrapped is NULL once shredded.
CREATE TABLE keys (
	owner    TEXT    NOT NULL PRIMARY KEY,
	wrapped  BLOB,
	kek_id   INTEGER NOT NULL,
	created  INTEGER NOT NULL,
	shredded INTEGER NOT NULL
) WITHOUT ROWID;

-- Sealed audit events in commit order; AUTOINCREMENT never reuses a seq.
CREATE TABLE audit_events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	recorded_at INTEGER NOT NULL,
	body        BLOB    NOT NULL
);
