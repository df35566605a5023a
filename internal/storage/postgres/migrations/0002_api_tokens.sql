-- API tokens for service accounts: only the SHA-256 of each secret.
CREATE TABLE api_tokens (
	id      TEXT    NOT NULL PRIMARY KEY,
	name    TEXT    NOT NULL,
	hash    BYTEA   NOT NULL UNIQUE,
	roles   TEXT    NOT NULL,
	created BIGINT    NOT NULL,
	revoked BIGINT    NOT NULL
);
