-- phivault schema v1 (PostgreSQL). No column holds plaintext PHI: bodies are
-- ciphertext, search values are keyed hashes or date ranges, ids are
-- pseudonymous. Timestamps are unix microseconds UTC. Text compares
-- bytewise (COLLATE "C"), like BINARY on SQLite.

-- The current pointer of each resource.
CREATE TABLE resources (
	type         TEXT COLLATE "C" NOT NULL,
	id           TEXT COLLATE "C" NOT NULL,
	version      BIGINT NOT NULL,
	owner        TEXT COLLATE "C" NOT NULL,
	deleted      BOOLEAN NOT NULL,
	last_updated BIGINT NOT NULL,
	PRIMARY KEY (type, id)
);
CREATE INDEX resources_type_updated ON resources (type, last_updated);
CREATE INDEX resources_owner ON resources (owner);

-- Every version, append-only except for DEK rotation rewriting ciphertext.
CREATE TABLE resource_versions (
	type         TEXT COLLATE "C" NOT NULL,
	id           TEXT COLLATE "C" NOT NULL,
	version      BIGINT NOT NULL,
	owner        TEXT COLLATE "C" NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted      BOOLEAN NOT NULL,
	ciphertext   BYTEA,
	PRIMARY KEY (type, id, version)
);
CREATE INDEX resource_versions_updated ON resource_versions (last_updated);
CREATE INDEX resource_versions_type_updated ON resource_versions (type, last_updated);

-- Blind index of current versions: h for token/string/reference values,
-- [lo, hi] for dates. The trailing id makes the lookups covering.
CREATE TABLE search_index (
	type  TEXT COLLATE "C" NOT NULL,
	id    TEXT COLLATE "C" NOT NULL,
	param TEXT COLLATE "C" NOT NULL,
	h     BYTEA,
	lo    BIGINT,
	hi    BIGINT
);
CREATE INDEX search_index_hash ON search_index (type, param, h, id) WHERE h IS NOT NULL;
CREATE INDEX search_index_date ON search_index (type, param, lo, hi, id) WHERE h IS NULL;
CREATE INDEX search_index_resource ON search_index (type, id);

-- Wrapped data-encryption keys; wrapped is NULL once shredded.
CREATE TABLE keys (
	owner    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	wrapped  BYTEA,
	kek_id   BIGINT NOT NULL,
	created  BIGINT NOT NULL,
	shredded BOOLEAN NOT NULL
);

-- Sealed audit events in commit order; bigserial; AppendAudit holds an advisory lock so seq order is commit order.
CREATE TABLE audit_events (
	seq         BIGSERIAL PRIMARY KEY,
	recorded_at BIGINT NOT NULL,
	body        BYTEA    NOT NULL
);
