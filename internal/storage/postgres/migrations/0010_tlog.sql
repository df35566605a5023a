-- Tamper-evident audit log (ADR 0010): an RFC 6962 Merkle tree over the
-- audit events, published as C2SP signed checkpoints and tiles.
--
-- leaf_hash is the RFC 6962 leaf hash of the event's leaf (a 16-byte
-- salt followed by the canonical event bytes, both inside the sealed
-- body), computed when the event is sequenced, so the integrator needs
-- no decryption; "audit verify" recomputes it from the decrypted body.
-- leaf_index is assigned once by the integrator (NULL until then), in a
-- stable order; it is never derived from seq (sequences may commit out
-- of order on PostgreSQL).
ALTER TABLE audit_events ADD COLUMN leaf_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN leaf_index BIGINT;
CREATE UNIQUE INDEX audit_events_leaf_index ON audit_events (leaf_index);
CREATE INDEX audit_events_pending ON audit_events (seq) WHERE leaf_index IS NULL;

-- The tree's stored hashes, by golang.org/x/mod/sumdb/tlog stored hash
-- index: the hashes of leaf n occupy [StoredHashCount(n), StoredHashCount(n+1)).
-- Tiles and proofs are read from here.
CREATE TABLE tlog_hashes (
	id   BIGINT PRIMARY KEY,
	hash BYTEA NOT NULL
);

-- Every signed checkpoint (C2SP tlog-checkpoint note), kept for
-- consistency checks and inclusion proofs at any published size.
-- Timestamps are unix microseconds UTC.
CREATE TABLE tlog_checkpoints (
	size       BIGINT PRIMARY KEY,
	root       BYTEA NOT NULL,
	note       BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
