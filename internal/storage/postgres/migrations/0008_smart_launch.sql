-- SMART App Launch (issue: app launch): authorizations granted by a
-- user at the consent screen, their single-use authorization codes,
-- rotating refresh tokens, and the id_token signing key. No secret is
-- stored in clear: code_hash and token_hash are SHA-256 of 256-bit
-- random secrets; sealed is the RSA private key sealed by the keyring
-- (system token key, purpose "smart-id-token-key"). patient and
-- fhir_user are references ("Patient/<id>"), never names. Timestamps
-- are unix microseconds UTC; booleans are BOOLEAN.

-- An authorization is one consent: the family of every code, access
-- token and refresh token issued from it. Revoking it revokes them all.
CREATE TABLE smart_authorizations (
	id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	client_id TEXT COLLATE "C" NOT NULL REFERENCES smart_clients (id),
	user_id   TEXT    NOT NULL,
	fhir_user TEXT    NOT NULL, -- "Practitioner/<id>", "Patient/<id>" or ""
	roles     TEXT    NOT NULL, -- comma-separated identity roles at consent
	patient   TEXT    NOT NULL, -- launch patient id or ""
	scopes    TEXT    NOT NULL, -- canonical granted scope string
	created   BIGINT  NOT NULL,
	expires   BIGINT  NOT NULL, -- no refresh token outlives it
	revoked   BOOLEAN NOT NULL
);
CREATE INDEX smart_authorizations_user ON smart_authorizations (user_id);

CREATE TABLE smart_auth_codes (
	code_hash      BYTEA   NOT NULL PRIMARY KEY,
	authz_id       TEXT COLLATE "C" NOT NULL REFERENCES smart_authorizations (id),
	redirect_uri   TEXT    NOT NULL,
	code_challenge TEXT    NOT NULL, -- PKCE S256 challenge
	nonce          TEXT    NOT NULL,
	expires        BIGINT  NOT NULL,
	used           BOOLEAN NOT NULL
);
CREATE INDEX smart_auth_codes_expires ON smart_auth_codes (expires);

CREATE TABLE smart_refresh_tokens (
	token_hash    BYTEA   NOT NULL PRIMARY KEY,
	authz_id      TEXT COLLATE "C" NOT NULL REFERENCES smart_authorizations (id),
	issued        BIGINT  NOT NULL,
	expires       BIGINT  NOT NULL,
	spent         BOOLEAN NOT NULL
);
CREATE INDEX smart_refresh_tokens_authorization ON smart_refresh_tokens (authz_id);

-- Access tokens issued from an authorization name it; "" for Backend
-- Services tokens.
ALTER TABLE smart_access_tokens ADD COLUMN authz_id TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX smart_access_tokens_authorization ON smart_access_tokens (authz_id);

CREATE TABLE smart_signing_keys (
	kid     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	alg     TEXT    NOT NULL,
	sealed  TEXT    NOT NULL,
	created BIGINT  NOT NULL
);
