-- Erasure empties the ciphertext of every version its owner sealed, in
-- the transaction that destroys the key (ADR 0015, amendment): another
-- process of a fleet that still caches the key record then finds
-- nothing to decrypt and answers 410. This index finds those versions.
CREATE INDEX resource_versions_owner ON resource_versions (owner);
