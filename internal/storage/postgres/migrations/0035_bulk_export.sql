-- FHIR Bulk Data export (package bulk, ADR 0049). No column holds PHI:
-- the output is sealed under a key of the job's own (wrapped under the
-- KEK, bound to the job), destroyed with the job (crypto-shredding).
-- The parameters (_typeFilter values can hold search values) are sealed
-- under the same key. Times are unix microseconds UTC.

-- A backend client's registered purpose of use (v3 PurposeOfUse:
-- HPAYMT, HRESCH, HOPERAT, TREAT, PUBHLTH, ...): what its bulk exports
-- disclose for, matched against patient Consents. "" for clients
-- registered before, which cannot start an export. Covered by the
-- row's MAC when set.
ALTER TABLE smart_clients ADD COLUMN purpose TEXT NOT NULL DEFAULT '';

CREATE TABLE bulk_jobs (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- random, unguessable; in the status URL
	client      TEXT COLLATE "C" NOT NULL,             -- the SMART client that started it (only it sees the job)
	state       TEXT COLLATE "C" NOT NULL,             -- queued, running, done, failed
	params      BYTEA    NOT NULL,             -- the parsed kick-off, sealed under the job key
	job_key     BYTEA,                         -- the job key wrapped under the KEK; NULL once destroyed
	created     BIGINT NOT NULL,
	tx_time     BIGINT NOT NULL,             -- the manifest's transactionTime
	expires     BIGINT NOT NULL,             -- files and key are destroyed after this
	holder      TEXT COLLATE "C" NOT NULL,             -- process running it ("" when none)
	lease_until BIGINT NOT NULL,
	attempts    BIGINT NOT NULL,             -- runs started; a job interrupted too often fails
	progress    TEXT COLLATE "C" NOT NULL,             -- X-Progress (no PHI: counts)
	error       TEXT COLLATE "C" NOT NULL              -- why it failed (no PHI)
);
CREATE INDEX bulk_jobs_client ON bulk_jobs (client, state);
CREATE INDEX bulk_jobs_state ON bulk_jobs (state, lease_until);

-- Output files: one NDJSON file per row, sealed under the job key.
CREATE TABLE bulk_files (
	job      TEXT COLLATE "C" NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
	n        BIGINT NOT NULL,  -- file number (in the download URL; bound into the ciphertext)
	kind     TEXT COLLATE "C" NOT NULL,  -- "output" or "error"
	res_type TEXT COLLATE "C" NOT NULL,
	count    BIGINT NOT NULL,  -- resources in the file
	data     BYTEA    NOT NULL,
	PRIMARY KEY (job, n)
);
