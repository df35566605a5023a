-- Rows that grant access are authenticated (ADR 0022). Whoever
-- can write the database without the key-encryption key must not be able
-- to mint a credential or raise a privilege by inserting or editing a
-- row. Each such row gets a MAC (HMAC-SHA256 under a subkey of the
-- system/auth-rows key) over its table, primary key and
-- security-relevant columns; a row whose MAC does not verify is treated
-- as absent and raises an integrity alarm.
--
-- mac is NULL until the server computes it: on the first start after
-- this migration it MACs every existing row once, in the transaction
-- that creates the system/auth-rows key (package app, authrows.go).
--
-- hash_kind (tokens, sessions, enrolment secrets) names how a secret's lookup hash was made: 'hmac' (keyed,
-- the only kind written from now on) or 'sha256' (plain SHA-256, rows
-- written before this migration). A 'sha256' row is accepted only with a
-- valid MAC, which only the upgrade pass gave it.
ALTER TABLE api_tokens ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256';
ALTER TABLE api_tokens ADD COLUMN mac BLOB;

ALTER TABLE users ADD COLUMN mac BLOB;

ALTER TABLE enrolment_secrets ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256';
ALTER TABLE enrolment_secrets ADD COLUMN mac BLOB;

-- Second factors. TOTP secrets need none: they are sealed bound to the
-- user id.
ALTER TABLE webauthn_credentials ADD COLUMN mac BLOB;
ALTER TABLE recovery_codes ADD COLUMN mac BLOB;

-- Enterprise SSO identities linked to accounts.
ALTER TABLE sso_links ADD COLUMN mac BLOB;

-- Break-the-glass grants.
ALTER TABLE authz_grants ADD COLUMN mac BLOB;

ALTER TABLE sessions ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256';
ALTER TABLE sessions ADD COLUMN mac BLOB;

ALTER TABLE smart_clients ADD COLUMN mac BLOB;

-- SMART App Launch and Backend Services grants: MAC only (their lookup
-- hashes stay SHA-256, see ADR 0022).
ALTER TABLE smart_authorizations ADD COLUMN mac BLOB;
ALTER TABLE smart_auth_codes ADD COLUMN mac BLOB;
ALTER TABLE smart_access_tokens ADD COLUMN mac BLOB;
ALTER TABLE smart_refresh_tokens ADD COLUMN mac BLOB;
