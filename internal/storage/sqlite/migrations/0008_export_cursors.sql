-- SIEM export (issue 5): per sink, the sequence number of the last audit
-- record the sink accepted. The exporter advances it only after the sink
-- has taken the batch, so a slow or failed sink loses nothing. Sink
-- names come from the configuration. updated is unix microseconds UTC.

CREATE TABLE audit_export_cursors (
	sink    TEXT    PRIMARY KEY,
	seq     INTEGER NOT NULL,
	updated INTEGER NOT NULL
);
