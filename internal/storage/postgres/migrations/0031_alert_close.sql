-- Alerts close with their review (ADR 0036): closing a break-the-glass
-- review closes the alerts raised for its grant, in the transaction
-- that closes the review. closed_at is unix microseconds UTC, 0 while
-- open; closed_by the reviewer's account id; closed_review the review.
ALTER TABLE authz_alerts ADD COLUMN closed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authz_alerts ADD COLUMN closed_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE authz_alerts ADD COLUMN closed_review TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX authz_alerts_ref ON authz_alerts (ref);
