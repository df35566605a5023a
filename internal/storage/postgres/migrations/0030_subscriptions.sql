-- R4 Subscriptions (package subscription, ADR 0030). No column holds
-- PHI: ids are pseudonymous, criteria and endpoints stay in the sealed
-- Subscription resource. Times are unix microseconds UTC.

-- The delivery state of each Subscription, kept up from the audit log's
-- write events: whose it is (the principal of its latest write, taken
-- from that write's audit event, never from the resource), the resource
-- type its criteria search, its channel, and where delivery stands.
CREATE TABLE subscriptions (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- Subscription logical id
	version    BIGINT NOT NULL,             -- the resource version this row reflects
	owner_kind TEXT COLLATE "C" NOT NULL,             -- "token", "account", or "" (no supported owner)
	owner_id   TEXT COLLATE "C" NOT NULL,             -- API token id or account id
	crit_type  TEXT COLLATE "C" NOT NULL,             -- resource type the criteria search
	channel    TEXT COLLATE "C" NOT NULL,             -- "rest-hook" or "websocket"
	state      TEXT COLLATE "C" NOT NULL,             -- requested, active, error, off
	failures   BIGINT NOT NULL,
	updated    BIGINT NOT NULL
);
CREATE INDEX subscriptions_type ON subscriptions (crit_type, state);

-- Notifications owed: one row per (subscription, change), claimed by
-- one process at a time with a lease, deleted once delivered or dropped.
CREATE TABLE subscription_notifications (
	sub_id      TEXT COLLATE "C" NOT NULL,
	leaf        BIGINT NOT NULL, -- leaf index of the write's audit event
	res_type    TEXT COLLATE "C" NOT NULL,
	res_id      TEXT COLLATE "C" NOT NULL,
	res_version BIGINT NOT NULL,
	kind        TEXT COLLATE "C" NOT NULL, -- "event" or "handshake"
	patients    TEXT COLLATE "C" NOT NULL, -- "Patient/<id>" the change touched, comma-separated (for the delivery's audit event)
	attempts    BIGINT NOT NULL,
	next_at     BIGINT NOT NULL,
	lease_until BIGINT NOT NULL,
	holder      TEXT COLLATE "C" NOT NULL,
	created     BIGINT NOT NULL,
	PRIMARY KEY (sub_id, leaf, res_type, res_id)
);
CREATE INDEX subscription_notifications_due ON subscription_notifications (next_at);
