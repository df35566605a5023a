-- Followers of the audit log (issue 5). SIEM export: per sink, the sequence number of the last audit
-- record the sink accepted. The exporter advances it only after the sink
-- has taken the batch, so a slow or failed sink loses nothing. Sink
-- names come from the configuration. updated is unix microseconds UTC.

CREATE TABLE audit_export_cursors (
	sink    TEXT COLLATE "C" PRIMARY KEY,
	seq     BIGINT NOT NULL,
	updated BIGINT NOT NULL
);

-- The audit index (issue 5): blind-index terms (HMAC under the
-- blind-index key) of each audit event's patients, resources, agent,
-- client, action and outcome, written by the index follower (cursor
-- "_index" above). Derived data: it can be rebuilt from the log.
CREATE TABLE audit_terms (
	term BYTEA  NOT NULL,
	seq  BIGINT NOT NULL,
	PRIMARY KEY (term, seq)
);
