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
	id          TEXT    NOT NULL PRIMARY KEY, -- random, unguessable; in the status URL
	client      TEXT    NOT NULL,             -- the SMART client that started it (only it sees the job)
	state       TEXT    NOT NULL,             -- queued, running, done, failed
	params      BLOB    NOT NULL,             -- the parsed kick-off, sealed under the job key
	job_key     BLOB,                         -- the job key wrapped under the KEK; NULL once destroyed
	created     INTEGER NOT NULL,
	tx_time     INTEGER NOT NULL,             -- the manifest's transactionTime
	expires     INTEGER NOT NULL,             -- files and key are destroyed after this
	holder      TEXT    NOT NULL,             -- process running it ("" when none)
	lease_until INTEGER NOT NULL,
	attempts    INTEGER NOT NULL,             -- runs started; a job interrupted too often fails
	progress    TEXT    NOT NULL,             -- X-Progress (no PHI: counts)
	error       TEXT    NOT NULL              -- why it failed (no PHI)
);
CREATE INDEX bulk_jobs_client ON bulk_jobs (client, state);
CREATE INDEX bulk_jobs_state ON bulk_jobs (state, lease_until);

-- Output files: one NDJSON file per row, sealed under the job key.
CREATE TABLE bulk_files (
	job      TEXT    NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
	n        INTEGER NOT NULL,  -- file number (in the download URL; bound into the ciphertext)
	kind     TEXT    NOT NULL,  -- "output" or "error"
	res_type TEXT    NOT NULL,
	count    INTEGER NOT NULL,  -- resources in the file
	data     BLOB    NOT NULL,
	PRIMARY KEY (job, n)
);
