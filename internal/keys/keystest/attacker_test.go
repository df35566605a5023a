package keystest_test

import (
	"bytes"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/keys/keystest"
)

// TestAttackerRecovers: the scanner finds a wrapped key buried in noise,
// unwraps it with the key file for its owner only, and opens a resource
// sealed with it. Without this, an attack test recovering nothing would
// prove nothing.
func TestAttackerRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := keys.CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	kek, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := keys.NewKeyring(kek, keys.Options{})
	rec, err := k.NewDEK("Patient/p1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d, err := k.DEK(rec)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := d.Seal([]byte("phi"), keys.ResourceAD{Type: "Observation", ID: "o1", Version: 3, Owner: "Patient/p1"})
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 1<<16)
	rand.Read(noise)
	disk := append(append(append([]byte{}, noise...), rec.Wrapped...), noise...)

	a, err := keystest.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, c := range keystest.Candidates(disk) {
		if _, ok := a.Unwrap(c, "Patient/p2"); ok {
			t.Fatal("a wrapped key opened for another owner")
		}
		dek, ok := a.Unwrap(c, "Patient/p1")
		if !ok {
			continue
		}
		found++
		if pt, ok := keystest.Open(dek, ct, "Observation", "o1", 3, "Patient/p1"); !ok || !bytes.Equal(pt, []byte("phi")) {
			t.Fatalf("the recovered key does not open the resource: %q %v", pt, ok)
		}
	}
	if found != 1 {
		t.Fatalf("recovered %d keys, want 1", found)
	}
}

func FuzzCandidates(f *testing.F) {
	f.Add([]byte{0x12, 0x21, 0x01, 0, 0, 0, 1})
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range keystest.Candidates(b) {
			if len(c) < 2 || c[0] != 0x12 || !bytes.Contains(b, c) {
				t.Fatalf("bad candidate %x", c)
			}
		}
	})
}
