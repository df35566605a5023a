package backup

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

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
