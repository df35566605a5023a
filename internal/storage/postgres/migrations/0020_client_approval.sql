-- Issue 11 (penetration test F2): SMART clients under the two-person
-- rule (ADR 0020). A client whose grants reach patient data is
-- registered "pending" and obtains no token until a second security
-- administrator approves it. Approval requests are access_requests rows
-- of kind "smart-client" (target: the client id; roles and base_roles
-- are empty).
-- Timestamps are unix microseconds UTC; booleans are BOOLEAN.

-- approval: pending | approved | rejected | not-needed | break-glass |
-- legacy (smart.ClientApproval); "" is refused by the code (fail
-- closed), so the default only serves the rows below.
-- registered_by: account id of the registering administrator, "cli"
-- for the offline CLI, "" when unknown; approved_by: account id of the
-- approving administrator.
ALTER TABLE smart_clients ADD COLUMN approval TEXT NOT NULL DEFAULT '';
ALTER TABLE smart_clients ADD COLUMN registered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE smart_clients ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';

-- Backend clients that one administrator registered in the console
-- while the two-person rule already covered role grants (migration
-- 0019 raised a "client-backend-registered" alert for each) are exactly
-- what the penetration test exploited: they are suspended until a
-- second administrator approves them (any administrator but their
-- registrar may request it in the console), with a high alert each.
UPDATE smart_clients SET approval = 'pending',
	registered_by = (SELECT MIN(a.user_id) FROM authz_alerts a WHERE a.kind = 'client-backend-registered' AND a.ref = 'Client/' || smart_clients.id)
WHERE EXISTS (SELECT 1 FROM authz_alerts a WHERE a.kind = 'client-backend-registered' AND a.ref = 'Client/' || smart_clients.id);

INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created)
SELECT 'mig0020-' || c.id, 'client-suspended-unapproved', 'high', c.registered_by, '', 'Client/' || c.id,
	(extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
FROM smart_clients c WHERE c.approval = 'pending';

-- Every other client predates the rule (registered by the offline CLI,
-- or in the console before role grants needed two people): it keeps
-- working, so an upgrade cuts no integration, and each enabled one is
-- listed for the privacy officer to review.
UPDATE smart_clients SET approval = 'legacy' WHERE approval = '';

INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created)
SELECT 'mig0020-' || c.id, 'client-legacy-review', 'medium', '', '', 'Client/' || c.id,
	(extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
FROM smart_clients c WHERE c.approval = 'legacy' AND NOT c.disabled;
