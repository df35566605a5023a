-- The change feed of the authorization facts (ADR 0043). Every write of
-- a resource a patient's facts are built from (the Patient, its
-- Consents, its RelatedPersons) appends the owner it was written under,
-- before and after, in the writing transaction itself: no write path,
-- process or fleet node can change those facts without a row here.
-- Each server polls the recent rows and drops the cached facts of those
-- owners, so the cache can live long without serving stale consent.
-- With one writer, seq is the commit order: a poll reads the rows after
-- the last seq it saw. at is unix microseconds UTC by the database
-- clock, for pruning.
CREATE TABLE authz_changes (
	seq   INTEGER PRIMARY KEY AUTOINCREMENT,
	owner TEXT NOT NULL,
	at    INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))
);
CREATE INDEX authz_changes_at ON authz_changes (at);

CREATE TRIGGER authz_changes_insert AFTER INSERT ON resources
WHEN NEW.type IN ('Patient', 'Consent', 'RelatedPerson')
BEGIN
	INSERT INTO authz_changes (owner) VALUES (NEW.owner);
END;

CREATE TRIGGER authz_changes_update AFTER UPDATE ON resources
WHEN NEW.type IN ('Patient', 'Consent', 'RelatedPerson') OR OLD.type IN ('Patient', 'Consent', 'RelatedPerson')
BEGIN
	INSERT INTO authz_changes (owner) VALUES (NEW.owner);
	INSERT INTO authz_changes (owner) SELECT OLD.owner WHERE OLD.owner <> NEW.owner;
END;

CREATE TRIGGER authz_changes_delete AFTER DELETE ON resources
WHEN OLD.type IN ('Patient', 'Consent', 'RelatedPerson')
BEGIN
	INSERT INTO authz_changes (owner) VALUES (OLD.owner);
END;
