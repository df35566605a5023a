-- KEK epochs (ADR 0015): crypto-shredding destroys the KEK keys that
-- wrapped an erased patient's data key, outside the database. Each epoch
-- adds a KEK key, re-wraps every live key record under it, and destroys
-- the others; kek_retired is the fence: Tx.PutKey and Tx.ReplaceKey
-- refuse a record wrapped under a retired id.
CREATE TABLE kek_epochs (
	epoch         INTEGER PRIMARY KEY,
	state         TEXT    NOT NULL,
	kek_id        INTEGER NOT NULL,
	prev_primary  INTEGER NOT NULL,
	started       INTEGER NOT NULL,
	rewrapped     INTEGER NOT NULL,
	destroy_after INTEGER NOT NULL,
	completed     INTEGER NOT NULL,
	erasures      INTEGER NOT NULL,
	holder        TEXT    NOT NULL,
	heartbeat     INTEGER NOT NULL
);

CREATE TABLE kek_retired (
	kek_id    INTEGER PRIMARY KEY,
	epoch     INTEGER NOT NULL,
	destroyed INTEGER NOT NULL
);
