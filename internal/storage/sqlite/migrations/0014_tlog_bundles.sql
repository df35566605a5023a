-- Entry bundles and hash tiles (ADR 0014). Integrated audit events live
-- in sealed entry bundles of 256 leaves (the C2SP tlog-tiles entry
-- bundle, encrypted as a whole under the log key, bound to its number
-- and width); the tree's hashes in C2SP hash tiles of 256 hashes. The
-- integrator moves each pending audit_events row into its bundle and
-- deletes it in the same transaction, so every integrated event has
-- exactly one stored copy. Rows integrated by an earlier version (one
-- row per leaf, with leaf_index set) and tlog_hashes are converted by
-- the integrator at its first run.
CREATE TABLE tlog_bundles (
	n     INTEGER PRIMARY KEY,
	width INTEGER NOT NULL,
	body  BLOB    NOT NULL
);

CREATE TABLE tlog_tiles (
	level INTEGER NOT NULL,
	n     INTEGER NOT NULL,
	width INTEGER NOT NULL,
	data  BLOB    NOT NULL,
	PRIMARY KEY (level, n)
);

-- The audit index reads event bodies from the bundles now, so it keeps
-- each event's time itself (unix microseconds UTC) for date filters.
-- It is derived data: it is emptied here and rebuilt by the index
-- follower from the log (its cursor restarts at leaf 0).
DELETE FROM audit_terms;
DELETE FROM audit_export_cursors WHERE sink = '_index';
ALTER TABLE audit_terms ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
