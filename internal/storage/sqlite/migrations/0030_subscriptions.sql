-- R4 Subscriptions (package subscription, ADR 0030). No column holds
-- PHI: ids are pseudonymous, criteria and endpoints stay in the sealed
-- Subscription resource. Times are unix microseconds UTC.

-- The delivery state of each Subscription, kept up from the audit log's
-- write events: whose it is (the principal of its latest write, taken
-- from that write's audit event, never from the resource), the resource
-- type its criteria search, its channel, and where delivery stands.
CREATE TABLE subscriptions (
	id         TEXT    NOT NULL PRIMARY KEY, -- Subscription logical id
	version    INTEGER NOT NULL,             -- the resource version this row reflects
	owner_kind TEXT    NOT NULL,             -- "token", "account", or "" (no supported owner)
	owner_id   TEXT    NOT NULL,             -- API token id or account id
	crit_type  TEXT    NOT NULL,             -- resource type the criteria search
	channel    TEXT    NOT NULL,             -- "rest-hook" or "websocket"
	state      TEXT    NOT NULL,             -- requested, active, error, off
	failures   INTEGER NOT NULL,
	updated    INTEGER NOT NULL
);
CREATE INDEX subscriptions_type ON subscriptions (crit_type, state);

-- Notifications owed: one row per (subscription, change), claimed by
-- one process at a time with a lease, deleted once delivered or dropped.
CREATE TABLE subscription_notifications (
	sub_id      TEXT    NOT NULL,
	leaf        INTEGER NOT NULL, -- leaf index of the write's audit event
	res_type    TEXT    NOT NULL,
	res_id      TEXT    NOT NULL,
	res_version INTEGER NOT NULL,
	kind        TEXT    NOT NULL, -- "event" or "handshake"
	patients    TEXT    NOT NULL, -- "Patient/<id>" the change touched, comma-separated (for the delivery's audit event)
	attempts    INTEGER NOT NULL,
	next_at     INTEGER NOT NULL,
	lease_until INTEGER NOT NULL,
	holder      TEXT    NOT NULL,
	created     INTEGER NOT NULL,
	PRIMARY KEY (sub_id, leaf, res_type, res_id)
);
CREATE INDEX subscription_notifications_due ON subscription_notifications (next_at);
