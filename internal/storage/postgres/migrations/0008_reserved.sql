-- PLACEHOLDER, branch "passkey" only. Version 8 is reserved for another
-- branch's migration (the passkey work was given 0009). sqldb.Migrations
-- requires versions without gaps, so this empty step keeps 0009
-- applicable on this branch. At merge, the real 0008 replaces this file
-- (take theirs); a database migrated by this branch alone must be
-- discarded, not upgraded.
SELECT 1;
