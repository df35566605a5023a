package cli_test

import (
	"strings"
	"testing"
)

// TestVerifyRunsFullIntegrityCheck damages a SQLite database so that its
// pages stay well formed but an index no longer matches its table (the
// index's definition in the schema is changed under it, as a damaged
// schema page or a careless tool leaves it): the quick_check at open
// passes, and "phivault verify" must name the database corrupt from
// PRAGMA integrity_check rather than verify it.
func TestVerifyRunsFullIntegrityCheck(t *testing.T) {
	dir, _ := secImportSynth(t, 2)
	secMustRun(t, "verify", "--data", dir)
	db := secDB(t, dir)
	for _, q := range []string{
		"PRAGMA writable_schema = ON",
		"UPDATE sqlite_schema SET sql = 'CREATE INDEX search_index_resource ON search_index (id, type)' WHERE name = 'search_index_resource'",
		"PRAGMA writable_schema = OFF",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	r := secRun(t, "verify", "--data", dir)
	if r.code == 0 {
		t.Fatalf("verify passed a database whose index does not match its table:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "database is corrupt") || !strings.Contains(r.stderr, "search_index_resource") {
		t.Fatalf("verify does not name the corrupt database:\nstdout:\n%s\nstderr:\n%s", r.stdout, secTail(r.stderr, 2000))
	}
}
