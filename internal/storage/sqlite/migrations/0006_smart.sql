-- SMART on FHIR authorization server (issue 3): clients, used assertion
-- ids and access tokens. No secret is stored in clear: jwks holds public
-- keys only (validated at registration), token_hash is the SHA-256 of a
-- 256-bit access token. Client names are labels chosen by an
-- administrator, not PHI. Timestamps are unix microseconds UTC; booleans
-- are INTEGER 0/1.

CREATE TABLE smart_clients (
	id            TEXT    NOT NULL PRIMARY KEY,
	name          TEXT    NOT NULL,
	type          TEXT    NOT NULL, -- backend | public | confidential
	jwks          TEXT    NOT NULL, -- public JWK Set (JSON), "" when jwks_url is set
	jwks_url      TEXT    NOT NULL, -- "" when jwks is set
	redirect_uris TEXT    NOT NULL, -- JSON array of strings
	scopes        TEXT    NOT NULL, -- canonical SMART scope string
	created       INTEGER NOT NULL,
	disabled      INTEGER NOT NULL
);

-- The jti of every accepted client assertion, kept until the assertion
-- expires (plus clock skew), so a replay is refused.
CREATE TABLE smart_assertion_jtis (
	client_id TEXT    NOT NULL REFERENCES smart_clients (id),
	jti       TEXT    NOT NULL,
	expires   INTEGER NOT NULL,
	PRIMARY KEY (client_id, jti)
);
CREATE INDEX smart_assertion_jtis_expires ON smart_assertion_jtis (expires);

CREATE TABLE smart_access_tokens (
	token_hash BLOB    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL REFERENCES smart_clients (id),
	scopes     TEXT    NOT NULL,
	issued     INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	revoked    INTEGER NOT NULL
);
CREATE INDEX smart_access_tokens_expires ON smart_access_tokens (expires);
CREATE INDEX smart_access_tokens_client ON smart_access_tokens (client_id);
