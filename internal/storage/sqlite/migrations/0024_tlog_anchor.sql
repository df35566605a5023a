-- The checkpoint kept outside the database (ADR 0016): the
-- database says whether the server may create it when it is missing.
-- state: "new" (no checkpoint signed yet: the first integration creates
-- the file), "upgrade" (a log signed by a version that kept no
-- checkpoint outside the database: the first integration keeps the
-- latest verified checkpoint and logs it), "kept" (the file was
-- established: its absence is an integrity alarm until an operator
-- runs "phivault audit accept-checkpoint" or restores it). No row
-- means "kept" (fail closed).
CREATE TABLE tlog_anchor (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	state TEXT NOT NULL
);
INSERT INTO tlog_anchor (id, state)
SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM tlog_checkpoints) THEN 'upgrade' ELSE 'new' END;
