-- Reserved: migration 0008 belongs to a parallel branch (SMART app launch,
-- passkeys or the Merkle audit log). This placeholder only keeps the
-- sequence contiguous on the authz branch; delete it at merge.
SELECT 1;
