-- SIEM export (issue 5): per sink, the sequence number of the last audit
-- record the sink accepted. The exporter advances it only after the sink
-- has taken the batch, so a slow or failed sink loses nothing. Sink
-- names come from the configuration. updated is unix microseconds UTC.

CREATE TABLE audit_export_cursors (
	sink    TEXT COLLATE "C" PRIMARY KEY,
	seq     BIGINT NOT NULL,
	updated BIGINT NOT NULL
);
