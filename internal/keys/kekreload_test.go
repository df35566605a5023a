package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestKeyringReloadsRotatedKeyFile: a server opened the key file before
// another process rotated it and re-wrapped a DEK under the new key. The
// server must pick the new key up from the file (rate-limited), open the
// record, and wrap new keys under the new primary from then on.
func TestKeyringReloadsRotatedKeyFile(t *testing.T) {
	path := newKeyFile(t)
	clock := &fakeClock{now: t0}
	server := NewKeyring(openFileKEKT(t, path), Options{Clock: clock.Now})
	rec := newDEKRec(t, server, "Patient/p1")

	if _, err := RotateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	rotator := NewKeyring(openFileKEKT(t, path), Options{})
	rewrapped, err := rotator.Rewrap(rec)
	if err != nil {
		t.Fatal(err)
	}
	if rewrapped.KEKID == rec.KEKID {
		t.Fatal("the rotator did not wrap under the new primary")
	}
	d := dekOf(t, server, rewrapped)
	ct, err := d.Seal([]byte("x"), ResourceAD{Type: "Patient", ID: "p1", Version: 1, Owner: "Patient/p1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dekOf(t, rotator, rewrapped).Open(ct, ResourceAD{Type: "Patient", ID: "p1", Version: 1, Owner: "Patient/p1"}); err != nil {
		t.Fatalf("the reloaded DEK is another key: %v", err)
	}
	if got := server.KEK().PrimaryID(); got != rewrapped.KEKID {
		t.Errorf("after the reload the primary is %d, want %d", got, rewrapped.KEKID)
	}
	if nr := newDEKRec(t, server, "Patient/p2"); nr.KEKID != rewrapped.KEKID {
		t.Errorf("a new DEK is wrapped under %d, want the new primary %d", nr.KEKID, rewrapped.KEKID)
	}

	// A second rotation within the interval is not picked up (the reload
	// is rate-limited); after the interval it is.
	if _, err := RotateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	rotator2 := NewKeyring(openFileKEKT(t, path), Options{})
	rec3 := newDEKRec(t, rotator2, "Patient/p3")
	if _, err := server.DEK(rec3); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("within %v of the last reload: err %v, want ErrDecrypt", kekReloadInterval, err)
	}
	clock.Advance(kekReloadInterval)
	dekOf(t, server, rec3)
	for _, k := range []*Keyring{server, rotator, rotator2} {
		k.Forget("Patient/p1")
	}
	dekOf(t, server, rec) // keys of the first KEK still open
}

// TestKeyringReloadRefusesShrunkKeyFile: a key file that no longer holds
// a key the keyring has loaded (replaced by another file) is not adopted,
// so records wrapped under the old keys keep opening.
func TestKeyringReloadRefusesShrunkKeyFile(t *testing.T) {
	path := newKeyFile(t)
	server := NewKeyring(openFileKEKT(t, path), Options{})
	rec := newDEKRec(t, server, "Patient/p1")

	other := filepath.Join(t.TempDir(), "other.json")
	if err := CreateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	foreign := NewKeyring(openFileKEKT(t, other), Options{})
	frec := newDEKRec(t, foreign, "Patient/p9")
	copyFile(t, other, path+".new", 0o600)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if _, err := server.DEK(frec); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a record of a foreign key file: err %v, want ErrDecrypt", err)
	}
	server.Forget("Patient/p1")
	dekOf(t, server, rec)
}

// TestKeyringReloadAdoptsEpochFile: after a KEK epoch run by another
// process destroyed the key this keyring loaded, a record re-wrapped
// under the new key makes it adopt the shrunk file, but only if the
// database vouches (Options.Destroyed) that the missing key was destroyed.
func TestKeyringReloadAdoptsEpochFile(t *testing.T) {
	for _, vouch := range []bool{true, false} {
		path := newKeyFile(t)
		old := openFileKEKT(t, path).PrimaryID()
		var asked []uint32
		server := NewKeyring(openFileKEKT(t, path), Options{CacheSize: -1, Destroyed: func(ids []uint32) bool {
			asked = append(asked, ids...)
			return vouch
		}})
		rec := newDEKRec(t, server, "Patient/p1")
		if _, err := AddKEKKey(path, nil); err != nil {
			t.Fatal(err)
		}
		job := NewKeyring(openFileKEKT(t, path), Options{})
		re, err := job.Rewrap(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DestroyKEKKeys(path, []uint32{old}); err != nil {
			t.Fatal(err)
		}
		_, err = server.DEK(re)
		if vouch && err != nil {
			t.Fatalf("vouched: the server does not open the re-wrapped record: %v", err)
		}
		if !vouch && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("not vouched: err %v, want ErrDecrypt (the shrunk file must not be adopted)", err)
		}
		if len(asked) != 1 || asked[0] != old {
			t.Errorf("Destroyed was asked about %v, want [%d]", asked, old)
		}
	}
}
