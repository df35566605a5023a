package storagetest

import (
	"database/sql"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/phivault/phivault/internal/storage/sqldb"
)

// migrateBelow applies to db, an empty database of dialect d, every
// migration numbered below version: the schema a database had before
// that migration, for tests that write old rows and then migrate.
func migrateBelow(t *testing.T, db *sql.DB, d sqldb.Dialect, version int) {
	t.Helper()
	before := fstest.MapFS{}
	names, err := fs.Glob(d.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if v, _ := strconv.Atoi(strings.SplitN(n, "_", 2)[0]); v < version {
			b, err := fs.ReadFile(d.Migrations, n)
			if err != nil {
				t.Fatal(err)
			}
			before[n] = &fstest.MapFile{Data: b}
		}
	}
	old := d
	old.Migrations = before
	if err := sqldb.Migrate(t.Context(), db, old); err != nil {
		t.Fatalf("migrating to %s: %v", fmt.Sprintf("%04d", version-1), err)
	}
}
