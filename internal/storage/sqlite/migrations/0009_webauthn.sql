-- WebAuthn / passkeys as a second factor (ADR 0009). The placeholder
-- table of 0003 (never written) is replaced by the full credential
-- record of WebAuthn §4 "credential record": the credential id and its
-- COSE public key as attested, the signature counter (clone detection),
-- the AAGUID, transport hints, the BE/BS/UV flags, a name the user
-- chose, and creation and last-use times. A user has several; the
-- credential id is unique across all users (§7.1 step 26). "id" is
-- phivault's own opaque handle, so no credential id ever appears in a
-- URL, the audit log or a log line.
-- Timestamps are unix microseconds UTC; booleans are INTEGER 0/1.

DROP TABLE webauthn_credentials;

CREATE TABLE webauthn_credentials (
	id              TEXT    NOT NULL PRIMARY KEY,
	user_id         TEXT    NOT NULL REFERENCES users (id),
	credential_id   BLOB    NOT NULL UNIQUE,
	public_key      BLOB    NOT NULL,
	sign_count      INTEGER NOT NULL, -- uint32 from the authenticator data
	aaguid          BLOB    NOT NULL,
	transports      TEXT    NOT NULL, -- comma-separated AuthenticatorTransport values
	backup_eligible INTEGER NOT NULL,
	backup_state    INTEGER NOT NULL,
	user_verified   INTEGER NOT NULL,
	name            TEXT    NOT NULL,
	created         INTEGER NOT NULL,
	last_used       INTEGER NOT NULL
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id, created);

-- Ceremonies already finished: the keyed hash (blind index) of kind and
-- challenge, so each sealed ceremony is used at most once, across every
-- process of a fleet, without keeping ceremony state in memory. Rows
-- are useless after "expires" (the ceremony's own expiry) and are
-- pruned as new ones are written.
CREATE TABLE webauthn_ceremonies (
	use_key BLOB    NOT NULL PRIMARY KEY,
	expires INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires);
