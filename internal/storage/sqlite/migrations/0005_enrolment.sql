-- Enrolment secrets (issue 3): a new account has no password; its owner
-- sets one with a one-time enrolment secret shown once to the admin who
-- created the account. Only the SHA-256 of the 256-bit secret is stored
-- (a fast hash is right for a high-entropy secret: there is nothing to
-- brute-force). At most one outstanding secret per user; using it
-- deletes the row, so a used secret is simply unknown.
-- Timestamps are unix microseconds UTC.

CREATE TABLE enrolment_secrets (
	user_id TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
	hash    BLOB    NOT NULL UNIQUE,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
