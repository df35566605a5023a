-- Identity (issue 3): local accounts, sessions, second factors.
-- Usernames and display names are workforce identity, not PHI; patient
-- accounts have an empty display_name (enforced by package identity), so
-- no patient name is stored in clear. Secrets are stored only in a
-- derived or sealed form: password_hash is a PHC string (argon2id),
-- token_hash is SHA-256 of a 256-bit session token, totp secrets are
-- ciphertext sealed with the keyring, recovery codes are hashed.
-- Timestamps are unix microseconds UTC; booleans are BOOLEAN.

CREATE TABLE users (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	username      TEXT COLLATE "C" NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL,
	fhir_user     TEXT    NOT NULL,
	roles         TEXT    NOT NULL, -- comma-separated identity.Role values
	disabled      BOOLEAN NOT NULL,
	mfa_enrolled  BOOLEAN NOT NULL,
	password_hash TEXT    NOT NULL, -- "" = no local password
	created       BIGINT  NOT NULL,
	updated       BIGINT  NOT NULL
);

CREATE TABLE sessions (
	id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	user_id          TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	token_hash       BYTEA   NOT NULL UNIQUE,
	created          BIGINT  NOT NULL,
	last_seen        BIGINT  NOT NULL,
	expires_absolute BIGINT  NOT NULL,
	idle_seconds     BIGINT  NOT NULL,
	revoked          BOOLEAN NOT NULL,
	mfa              BOOLEAN NOT NULL,
	address          TEXT    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created);

-- Schema only for now: the TOTP and WebAuthn strategies fill them.
CREATE TABLE totp_credentials (
	user_id           TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (id),
	secret_ciphertext BYTEA   NOT NULL, -- sealed by the caller with the keyring
	last_step         BIGINT  NOT NULL  -- highest accepted RFC 6238 step: each code is usable once
);

CREATE TABLE recovery_codes (
	user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	hash    BYTEA NOT NULL,
	PRIMARY KEY (user_id, hash)
);

CREATE TABLE webauthn_credentials (
	user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	credential_id BYTEA   NOT NULL UNIQUE,
	public_key    BYTEA   NOT NULL,
	sign_count    BIGINT  NOT NULL,
	transports    TEXT    NOT NULL,
	created       BIGINT  NOT NULL,
	PRIMARY KEY (user_id, credential_id)
);
