-- Identity (issue 3): local accounts, sessions, second factors.
-- Usernames and display names are workforce identity, not PHI; patient
-- accounts have an empty display_name (enforced by package identity), so
-- no patient name is stored in clear. Secrets are stored only in a
-- derived or sealed form: password_hash is a PHC string (argon2id),
-- token_hash is SHA-256 of a 256-bit session token, totp secrets are
-- ciphertext sealed with the keyring, recovery codes are hashed.
-- Timestamps are unix microseconds UTC; booleans are INTEGER 0/1.

CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL,
	fhir_user     TEXT    NOT NULL,
	roles         TEXT    NOT NULL, -- comma-separated identity.Role values
	disabled      INTEGER NOT NULL,
	mfa_enrolled  INTEGER NOT NULL,
	password_hash TEXT    NOT NULL, -- "" = no local password
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL
);

CREATE TABLE sessions (
	id               TEXT    NOT NULL PRIMARY KEY,
	user_id          TEXT    NOT NULL REFERENCES users (id),
	token_hash       BLOB    NOT NULL UNIQUE,
	created          INTEGER NOT NULL,
	last_seen        INTEGER NOT NULL,
	expires_absolute INTEGER NOT NULL,
	idle_seconds     INTEGER NOT NULL,
	revoked          INTEGER NOT NULL,
	mfa              INTEGER NOT NULL,
	address          TEXT    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created);

-- Schema only for now: the TOTP and WebAuthn strategies fill them.
CREATE TABLE totp_credentials (
	user_id           TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
	secret_ciphertext BLOB    NOT NULL, -- sealed by the caller with the keyring
	last_step         INTEGER NOT NULL  -- highest accepted RFC 6238 step: each code is usable once
);

CREATE TABLE recovery_codes (
	user_id TEXT NOT NULL REFERENCES users (id),
	hash    BLOB NOT NULL,
	PRIMARY KEY (user_id, hash)
);

CREATE TABLE webauthn_credentials (
	user_id       TEXT    NOT NULL REFERENCES users (id),
	credential_id BLOB    NOT NULL UNIQUE,
	public_key    BLOB    NOT NULL,
	sign_count    INTEGER NOT NULL,
	transports    TEXT    NOT NULL,
	created       INTEGER NOT NULL,
	PRIMARY KEY (user_id, credential_id)
);
