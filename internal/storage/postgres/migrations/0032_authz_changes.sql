-- The change feed of the authorization facts (ADR 0043). Every write of
-- a resource a patient's facts are built from (the Patient, its
-- Consents, its RelatedPersons) appends the owner it was written under,
-- before and after, in the writing transaction itself: no write path,
-- process or fleet node can change those facts without a row here.
-- Each server polls the recent rows and drops the cached facts of those
-- owners, so the cache can live long without serving stale consent.
-- A sequence number is not a cursor here: PostgreSQL commits out of
-- sequence order. xid is the writing transaction's id: a poll reads
-- the rows whose xid is at least the oldest transaction still running
-- at its previous poll (pg_snapshot_xmin), which covers every row that
-- can have become visible since, however long its transaction ran. at
-- is unix microseconds UTC by the database clock, for pruning.
CREATE TABLE authz_changes (
	seq   BIGSERIAL PRIMARY KEY,
	owner TEXT COLLATE "C" NOT NULL,
	xid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
	at    BIGINT NOT NULL DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint
);
CREATE INDEX authz_changes_xid ON authz_changes (xid);
CREATE INDEX authz_changes_at ON authz_changes (at);

CREATE FUNCTION authz_changes_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.type IN ('Patient', 'Consent', 'RelatedPerson') THEN
		INSERT INTO authz_changes (owner) VALUES (NEW.owner);
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.type IN ('Patient', 'Consent', 'RelatedPerson') THEN
		IF TG_OP = 'DELETE' OR OLD.owner <> NEW.owner THEN
			INSERT INTO authz_changes (owner) VALUES (OLD.owner);
		END IF;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER authz_changes_note AFTER INSERT OR UPDATE OR DELETE ON resources
FOR EACH ROW EXECUTE FUNCTION authz_changes_note();
