-- Issue 11 (items 7 and 9): separation of duties in account
-- administration, and single-use login challenges.
-- Timestamps are unix microseconds UTC; booleans are BOOLEAN.

-- Login challenges already used to start a session: the keyed hash
-- (blind index) of the challenge's nonce, so a sealed challenge starts
-- at most one session, across every process of a fleet. Rows are
-- useless after "expires" (the challenge's own expiry) and are pruned
-- as new ones are written.
CREATE TABLE login_challenges (
	use_key BYTEA   NOT NULL PRIMARY KEY,
	expires BIGINT  NOT NULL
);
CREATE INDEX login_challenges_expires ON login_challenges (expires);

-- A FHIR user is bound to at most one enabled account. Before the index
-- exists, every enabled account that shares its FHIR user with an older
-- enabled account is disabled (its sessions revoked), and a high-priority
-- alert names it for the privacy officer: the newer binding is the copy.
INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created)
SELECT 'mig0019-' || u.id, 'fhir-user-duplicate-disabled', 'high', u.id, '', u.fhir_user,
	(extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
FROM users u
WHERE u.fhir_user <> '' AND NOT u.disabled AND EXISTS (
	SELECT 1 FROM users o WHERE o.fhir_user = u.fhir_user AND NOT o.disabled
	AND (o.created < u.created OR (o.created = u.created AND o.id < u.id)));

UPDATE sessions SET revoked = TRUE WHERE NOT revoked AND user_id IN (
	SELECT u.id FROM users u
	WHERE u.fhir_user <> '' AND NOT u.disabled AND EXISTS (
		SELECT 1 FROM users o WHERE o.fhir_user = u.fhir_user AND NOT o.disabled
		AND (o.created < u.created OR (o.created = u.created AND o.id < u.id))));

UPDATE users SET disabled = TRUE, updated = (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT WHERE id IN (
	SELECT u.id FROM users u
	WHERE u.fhir_user <> '' AND NOT u.disabled AND EXISTS (
		SELECT 1 FROM users o WHERE o.fhir_user = u.fhir_user AND NOT o.disabled
		AND (o.created < u.created OR (o.created = u.created AND o.id < u.id))));

CREATE UNIQUE INDEX users_fhir_user_enabled ON users (fhir_user) WHERE fhir_user <> '' AND NOT disabled;

-- Pending access requests (two-person rule, ADR 0018): a change that a
-- second administrator must approve before it takes effect. Kind
-- "user-roles": replace the roles of account target by roles, if they
-- still are base_roles. One pending request per (kind, target); rows are
-- deleted when decided; expired rows cannot be approved and are deleted
-- when a new request for the same target is made.
CREATE TABLE access_requests (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	kind         TEXT    NOT NULL,
	target       TEXT    NOT NULL,
	roles        TEXT    NOT NULL, -- comma-separated identity.Role values
	base_roles   TEXT    NOT NULL,
	requested_by TEXT    NOT NULL, -- account id of the requester, or "sso"
	created      BIGINT  NOT NULL,
	expires      BIGINT  NOT NULL
);
CREATE UNIQUE INDEX access_requests_target ON access_requests (kind, target);
CREATE INDEX access_requests_created ON access_requests (created);
