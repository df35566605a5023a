-- Erasure empties the ciphertext of every version its owner sealed, in
-- the transaction that destroys the key (ADR 0015, amendment): another
-- process of a fleet that still caches the key record then finds
-- nothing to decrypt and answers 410. This index finds those versions.
CREATE INDEX resource_versions_owner ON resource_versions (owner);

-- The owner's ledger secret, sealed under its data key (ADR 0016,
-- amendment): the commitments to an owner's versions are keyed with it,
-- so they confirm nothing once the owner is erased. NULL for system keys
-- and for owners not written since; shredding sets it NULL.
ALTER TABLE keys ADD COLUMN ledger BLOB;
