package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestReaderMap: a server's readers do not map the file (their pages
// stay in SQLite's cache); a scanning command's do (Options.MapReaders).
func TestReaderMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, c := range []struct {
		dsn  string
		want int64
	}{
		{DSN(path, DefaultBusyTimeout, false), readerMmapBytes},
		{unmapped(DSN(path, DefaultBusyTimeout, false)), 0},
	} {
		db, err := sql.Open("sqlite", c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := db.QueryRowContext(t.Context(), "PRAGMA mmap_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != c.want {
			t.Errorf("mmap_size %d, want %d (%s)", got, c.want, c.dsn)
		}
	}
}
