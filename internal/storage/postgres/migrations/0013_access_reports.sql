-- Access reports (patient portal): a patient says "I don't recognise
-- this access" about one audit event (its leaf index). The comment and
-- the privacy officer's closing note may hold PHI: they are sealed with
-- the patient's data key (AES-GCM through internal/keys, associated data
-- "AccessReportNote"/id), so erasing the patient shreds them too.
-- Times are unix microseconds UTC; closed = 0 while the report is open.
CREATE TABLE access_reports (
	id         TEXT COLLATE "C" PRIMARY KEY,
	patient    TEXT   NOT NULL, -- "Patient/<id>"
	leaf       BIGINT NOT NULL, -- audit event (leaf index) reported
	reporter   TEXT   NOT NULL, -- account id of the patient
	created    BIGINT NOT NULL,
	comment    BYTEA,           -- sealed, or NULL
	closed     BIGINT NOT NULL DEFAULT 0,
	closer     TEXT   NOT NULL DEFAULT '',
	close_note BYTEA            -- sealed, or NULL
);
CREATE INDEX access_reports_open ON access_reports (closed, created);
