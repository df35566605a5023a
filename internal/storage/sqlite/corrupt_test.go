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

// TestCheckIntegrityNamesDamagedIndex damages one index entry of a copy
// of a database file so that its pages stay well formed: the quick_check
// at open passes (it does not compare indexes with their tables), and
// the full check that "phivault verify" runs (CheckIntegrity, PRAGMA
// integrity_check) names the damage with ErrCorrupt. The undamaged
// original passes.
func TestCheckIntegrityNamesDamagedIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "phivault.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mark := []byte("\xc3\x9e\x11\x5e\x77\xab")
	err = s.Update(t.Context(), func(tx storage.Tx) error {
		for i := range 50 {
			v := storage.Version{Type: "Observation", ID: fmt.Sprintf("o%04d", i), Version: 1, Owner: "org",
				Ciphertext: []byte("sealed"), LastUpdated: time.Unix(1700000000, 0).UTC()}
			h := append(append([]byte{}, mark...), byte(i))
			if err := tx.Put(t.Context(), v, []storage.IndexRow{{Param: "code", Hash: h}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The first copy of the marked hash of row 7 that the file holds
	// (the table's or one index's): one bit of its last byte flipped.
	at := strings.Index(string(b), string(append(append([]byte{}, mark...), 7)))
	if at < 0 {
		t.Fatal("the marked index row is not in the file")
	}
	b[at+len(mark)] ^= 0x40
	damaged := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}

	orig, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := orig.CheckIntegrity(t.Context()); err != nil {
		t.Fatalf("the undamaged database: %v", err)
	}
	c, err := sqlite.Open(t.Context(), damaged, sqlite.Options{})
	if err != nil {
		t.Fatalf("the damage should pass quick_check at open: %v", err)
	}
	defer c.Close()
	err = c.CheckIntegrity(t.Context())
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("CheckIntegrity of the damaged copy: %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "restore a backup") || !strings.Contains(err.Error(), "search_index") {
		t.Errorf("the finding does not name the damaged index and what to do: %v", err)
	}
}
