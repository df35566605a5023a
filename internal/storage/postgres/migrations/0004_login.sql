-- Login throttling (issue 3): per-account consecutive-failure state for
-- password.Lockout. Rows are keyed by a keyed hash (the blind-index PRF)
-- of the login name as typed, not by user id, so names that have no
-- account lock out exactly like real ones (the unknown-user path looks
-- the same) and no typed name is stored in clear: people type passwords
-- into the username field. Timestamps are unix microseconds UTC.

CREATE TABLE login_failures (
	login_key    BYTEA  NOT NULL PRIMARY KEY,
	failures     BIGINT NOT NULL,
	locked_until BIGINT NOT NULL, -- 0 = not locked
	updated      BIGINT NOT NULL
);
