-- KEK epochs (ADR 0015): crypto-shredding destroys the KEK keys that
-- wrapped an erased patient's data key, outside the database. Each epoch
-- adds a KEK key, re-wraps every live key record under it, and destroys
-- the others; kek_retired is the fence: Tx.PutKey and Tx.ReplaceKey
-- refuse a record wrapped under a retired id.
CREATE TABLE kek_epochs (
	epoch         BIGINT PRIMARY KEY,
	state         TEXT    NOT NULL,
	kek_id        BIGINT  NOT NULL,
	prev_primary  BIGINT  NOT NULL,
	started       BIGINT  NOT NULL,
	rewrapped     BIGINT  NOT NULL,
	destroy_after BIGINT  NOT NULL,
	completed     BIGINT  NOT NULL,
	erasures      BIGINT  NOT NULL,
	holder        TEXT    NOT NULL,
	heartbeat     BIGINT  NOT NULL
);

CREATE TABLE kek_retired (
	kek_id    BIGINT PRIMARY KEY,
	epoch     BIGINT  NOT NULL,
	destroyed BIGINT  NOT NULL
);
