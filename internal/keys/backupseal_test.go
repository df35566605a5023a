package keys_test

import (
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/phivault/phivault/internal/keys"
)

func openTestKEK(t *testing.T) *keys.KEK {
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

// TestBackupManifestSeal: a seal checks with the KEK that made it, for
// the digest it was made for, and with nothing else.
func TestBackupManifestSeal(t *testing.T) {
	k, other := openTestKEK(t), openTestKEK(t)
	d := sha256.Sum256([]byte("manifest"))
	seal, err := k.SealBackupManifest(d[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CheckBackupManifest(seal, d[:]); err != nil {
		t.Fatalf("own seal: %v", err)
	}
	d2 := sha256.Sum256([]byte("planted policy"))
	flipped := append([]byte(nil), seal...)
	flipped[len(flipped)-1] ^= 1
	for name, err := range map[string]error{
		"other digest": k.CheckBackupManifest(seal, d2[:]),
		"other KEK":    other.CheckBackupManifest(seal, d[:]),
		"flipped":      k.CheckBackupManifest(flipped, d[:]),
		"empty":        k.CheckBackupManifest(nil, d[:]),
		"short digest": k.CheckBackupManifest(seal, d[:5]),
		"huge seal":    k.CheckBackupManifest(make([]byte, 1<<20), d[:]),
	} {
		if !errors.Is(err, keys.ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := k.SealBackupManifest([]byte("short")); err == nil {
		t.Error("sealed a digest of the wrong size")
	}
}
