-- Followers of the audit log (issue 5), in Merkle leaf order. SIEM
-- export: per sink, its position, the number of leaves it accepted
-- (the index of the next one to send). The exporter advances it only
-- after the sink has taken the batch, so a slow or failed sink loses
-- nothing. Sink names come from the configuration; "_index" is the
-- audit index below. updated is unix microseconds UTC.

CREATE TABLE audit_export_cursors (
	sink    TEXT COLLATE "C" PRIMARY KEY,
	next    BIGINT NOT NULL,
	updated BIGINT NOT NULL
);

-- The audit index (issue 5): blind-index terms (HMAC under the
-- blind-index key) of each audit event's patients, resources, agent,
-- client, action and outcome, written by the index follower (cursor
-- "_index" above). Derived data: it can be rebuilt from the log.
CREATE TABLE audit_terms (
	term BYTEA  NOT NULL,
	leaf BIGINT NOT NULL, -- leaf index (audit_events.leaf_index)
	PRIMARY KEY (term, leaf)
);

-- Full verifications of the audit log ("phivault audit verify" and the
-- daily one in "phivault serve"): when each finished, the tree size it
-- covered, whether it passed, and the first divergence (leaf and what
-- differs; no event content). The trust page shows the latest success.
CREATE TABLE audit_verifications (
	finished BIGINT NOT NULL,
	size     BIGINT NOT NULL,
	ok       BOOLEAN NOT NULL,
	detail   TEXT NOT NULL
);
CREATE INDEX audit_verifications_finished ON audit_verifications (finished);
