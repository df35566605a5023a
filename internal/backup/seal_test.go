package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/phivault/phivault/internal/keys"
)

// testKEK is a real KEK from a new key file.
func testKEK(t testing.TB) *keys.KEK {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kek.json")
	if err := keys.CreateKeyFile(p); err != nil {
		t.Fatal(err)
	}
	k, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealRefusesAnotherKEK: an archive sealed by another deployment's
// KEK, or not sealed at all (a forger re-encrypting an edited archive),
// is refused with ErrUnauthenticated.
func TestSealRefusesAnotherKEK(t *testing.T) {
	mine, theirs := testKEK(t), testKEK(t)
	var buf bytes.Buffer
	a, _ := newArchiveWriter(&buf, seedManifest().Created)
	if err := a.add(sqliteEntry, 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(seedManifest(), theirs); err != nil {
		t.Fatal(err)
	}
	got, err := readArchive(bytes.NewReader(buf.Bytes()), func(string, int64, io.Reader) error { return nil }, Limits{}.budget(-1))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSeal(mine, got); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("another KEK's seal: %v, want ErrUnauthenticated", err)
	}
	got.seal = nil
	if err := checkSeal(theirs, got); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no seal: %v, want ErrUnauthenticated", err)
	}
}

// TestReadArchiveRefusesABomb: a small archive announcing or holding
// far more than its budget fails with ErrTooLarge before fn writes it,
// and an archive that keeps expanding fails as soon as it passes the
// budget.
func TestReadArchiveRefusesABomb(t *testing.T) {
	var buf bytes.Buffer
	a, _ := newArchiveWriter(&buf, seedManifest().Created)
	const big = 64 << 20
	if err := a.add(sqliteEntry, big, io.LimitReader(zeros{}, big)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(seedManifest(), testKEK(t)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 64<<10 {
		t.Fatalf("the test bomb is %d bytes", buf.Len())
	}
	written := 0
	fn := func(_ string, _ int64, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		written += int(n)
		return err
	}
	_, err := readArchive(bytes.NewReader(buf.Bytes()), fn, 1<<20)
	if !errors.Is(err, ErrTooLarge) || written != 0 {
		t.Fatalf("bomb: %v after %d bytes, want ErrTooLarge before any", err, written)
	}
	if _, err := readArchive(bytes.NewReader(buf.Bytes()), fn, big+1<<20); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	// A raw zstd stream of zeros under a tar header that lies about
	// nothing: the cap stops the reader itself.
	var raw bytes.Buffer
	zw, _ := zstd.NewWriter(&raw)
	_, _ = io.Copy(zw, io.LimitReader(zeros{}, big))
	_ = zw.Close()
	if _, err := readArchive(bytes.NewReader(raw.Bytes()), fn, 1<<20); err == nil {
		t.Fatal("a stream of zeros read as an archive")
	}
	if got := (Limits{}).budget(100 << 10); got != minExpansionBudget {
		t.Fatalf("budget of 100 KiB: %d", got)
	}
	if got := (Limits{MaxExpansion: 10}).budget(1 << 30); got != 10<<30 {
		t.Fatalf("budget of 1 GiB at 10x: %d", got)
	}
	if got := (Limits{MaxBytes: 1 << 30}).budget(1 << 30); got != 1<<30 {
		t.Fatalf("absolute cap: %d", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestRemoveStale: what a killed backup left (its private directory
// with nobody holding its lock, and the flat temporaries of older
// versions) is removed and named; a running backup's directory is not.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	live, done, err := tempDir(dir, snapshotPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	dead, deadDone, err := tempDir(dir, putPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate kill -9: the lock is released (the process is gone) but
	// nothing was removed.
	if err := os.WriteFile(filepath.Join(dead, "object"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadCopy := dead + "-copy"
	if err := os.Rename(dead, deadCopy); err != nil {
		t.Fatal(err)
	}
	deadDone() // removes nothing now: the directory moved
	for _, n := range []string{".backup-123.db", ".backup-123.db-journal", ".put-456", "phivault.db"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RemoveStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".backup-123.db", ".backup-123.db-journal", ".put-456", filepath.Base(deadCopy)}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the running backup's directory was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "phivault.db")); err != nil {
		t.Fatal("removed the database")
	}
}

// TestRestoreRefusesABombEarly: a small backup that would expand past
// its limit fails with ErrTooLarge, nothing is written and the target
// and its staging directory are gone.
func TestRestoreRefusesABombEarly(t *testing.T) {
	kek := testKEK(t)
	id, _ := age.GenerateX25519Identity()
	st, err := NewDirStore(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	m := seedManifest()
	name := NewName(m.Created)
	var ct bytes.Buffer
	ew, _ := age.Encrypt(&ct, id.Recipient())
	a, _ := newArchiveWriter(ew, m.Created)
	const big = 32 << 20
	if err := a.add(sqliteEntry, big, io.LimitReader(zeros{}, big)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(m, kek); err != nil {
		t.Fatal(err)
	}
	_ = ew.Close()
	sum := sha256.Sum256(ct.Bytes())
	_ = st.Put(t.Context(), name, bytes.NewReader(ct.Bytes()))
	_ = st.Put(t.Context(), name+SumSuffix, strings.NewReader(hex.EncodeToString(sum[:])))
	target := filepath.Join(t.TempDir(), "restored")
	_, err = Restore(t.Context(), st, name, RestoreOptions{Identities: Identities{id}, Auth: kek, DataDir: target,
		Limits: Limits{MaxBytes: 1 << 20}})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("restore of a bomb: %v, want ErrTooLarge", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore left %s", target)
	}
	if _, err := Verify(t.Context(), st, name, VerifyOptions{Identities: Identities{id}, TempDir: t.TempDir(), Limits: Limits{MaxBytes: 1 << 20}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("verify of a bomb: %v, want ErrTooLarge", err)
	}
}
