package keys

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// t0 is a fixed creation time for records made in tests.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newKeyFile creates a key file in a fresh temporary directory.
func newKeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := CreateKeyFile(path); err != nil {
		t.Fatalf("CreateKeyFile: %v", err)
	}
	return path
}

// openFileKEKT opens the KEK at path.
func openFileKEKT(t testing.TB, path string) *KEK {
	t.Helper()
	kek, err := OpenKEK(t.Context(), KEKSource{KeyFile: path}, nil)
	if err != nil {
		t.Fatalf("OpenKEK(%s): %v", path, err)
	}
	return kek
}

// newKeyring returns a keyring over a fresh local KEK.
func newKeyring(t testing.TB, opts Options) *Keyring {
	t.Helper()
	return NewKeyring(openFileKEKT(t, newKeyFile(t)), opts)
}

// newDEKRec creates a DEK record for owner and fails the test on error.
func newDEKRec(t testing.TB, k *Keyring, owner ident.Owner) storage.KeyRecord {
	t.Helper()
	rec, err := k.NewDEK(owner, t0)
	if err != nil {
		t.Fatalf("NewDEK(%s): %v", owner, err)
	}
	return rec
}

// dekOf unwraps rec and fails the test on error.
func dekOf(t testing.TB, k *Keyring, rec storage.KeyRecord) *DEK {
	t.Helper()
	d, err := k.DEK(rec)
	if err != nil {
		t.Fatalf("DEK(%s): %v", rec.Owner, err)
	}
	return d
}

// loadSystemKeys creates and loads both system keys.
func loadSystemKeys(t testing.TB, k *Keyring) {
	t.Helper()
	blind, err := k.NewSystemKey(SystemBlindIndex, t0)
	if err != nil {
		t.Fatalf("NewSystemKey(blind): %v", err)
	}
	token, err := k.NewSystemKey(SystemToken, t0)
	if err != nil {
		t.Fatalf("NewSystemKey(token): %v", err)
	}
	if err := k.LoadSystemKeys(blind, token); err != nil {
		t.Fatalf("LoadSystemKeys: %v", err)
	}
}

// fakeClock is a settable clock for cache TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// copyFile copies src to dst with mode.
func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
