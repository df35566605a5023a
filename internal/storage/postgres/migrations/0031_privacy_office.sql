-- The privacy office's rights work (ADR 0036).
--
-- Alerts close with their review (ADR 0036): closing a break-the-glass
-- review closes the alerts raised for its grant, in the transaction
-- that closes the review. closed_at is unix microseconds UTC, 0 while
-- open; closed_by the reviewer's account id; closed_review the review.
ALTER TABLE authz_alerts ADD COLUMN closed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authz_alerts ADD COLUMN closed_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE authz_alerts ADD COLUMN closed_review TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX authz_alerts_ref ON authz_alerts (ref);

-- Correction requests (HIPAA §164.526, right to amend): the part of the
-- record is a code of the portal's list; what is wrong, what it should
-- say and the decision's reason may hold PHI, so they are sealed with
-- the patient's data key (erasing the patient shreds them). Times are
-- unix microseconds UTC; decided = 0 while open.
CREATE TABLE amendments (
	id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	patient   TEXT COLLATE "C" NOT NULL, -- "Patient/<id>"
	requester TEXT COLLATE "C" NOT NULL, -- account id of the patient
	part      TEXT COLLATE "C" NOT NULL,
	created   BIGINT NOT NULL,
	request   BYTEA NOT NULL, -- sealed
	state     TEXT COLLATE "C" NOT NULL DEFAULT 'open',
	decided   BIGINT NOT NULL DEFAULT 0,
	decider   TEXT COLLATE "C" NOT NULL DEFAULT '',
	reason    BYTEA             -- sealed, or NULL
);
CREATE INDEX amendments_state ON amendments (state, created);
CREATE INDEX amendments_patient ON amendments (patient, created);
