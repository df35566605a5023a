package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// TestOpenRefusesDamagedFile damages one page in the middle of a
// database file, as a copy of a live database taken with cp can be, and
// checks that Open refuses it with ErrCorrupt (it used to open, and the
// server answered 500 for every read of the damaged pages), while the
// undamaged file opens.
func TestOpenRefusesDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ct := []byte(strings.Repeat("sealed bytes ", 160))
	err = s.Update(t.Context(), func(tx storage.Tx) error {
		for i := range 500 {
			v := storage.Version{Type: "Observation", ID: fmt.Sprintf("o%04d", i), Version: 1, Owner: "org",
				Ciphertext: ct, LastUpdated: time.Unix(1700000000, 0).UTC()}
			if err := tx.Put(t.Context(), v, []storage.IndexRow{{Param: "code", Hash: []byte{byte(i), byte(i >> 8)}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	again, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("the undamaged file does not open: %v", err)
	}
	again.Close()

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(strings.Repeat("\xa5\x5a", page/2))
	if _, err := f.WriteAt(junk, (st.Size()/page/2)*page); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("opening a damaged file: %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "restore a backup") {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
}
