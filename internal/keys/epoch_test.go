package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/phivault/phivault/internal/storage"
)

// TestKEKEpochDestroysOldKeys walks one KEK epoch at the keys level: a
// record wrapped before the epoch (a stale copy such as a backup keeps)
// opens under the key file until the retired key is destroyed, and under
// nothing afterwards; the re-wrapped record opens under the new primary
// alone, before and after.
func TestKEKEpochDestroysOldKeys(t *testing.T) {
	path := newKeyFile(t)
	k := NewKeyring(openFileKEKT(t, path), Options{CacheSize: -1})
	old := k.KEK().PrimaryID()
	stale := newDEKRec(t, k, "Patient/p1")
	ad := ResourceAD{"Observation", "o1", 1, "Patient/p1"}
	ct, err := dekOf(t, k, stale).Seal([]byte("phi"), ad)
	if err != nil {
		t.Fatal(err)
	}

	retired := map[uint32]bool{old: true}
	id, err := AddKEKKey(path, func(id uint32) bool { return retired[id] })
	if err != nil || id == old {
		t.Fatalf("AddKEKKey = %d, %v", id, err)
	}
	k.SetKEK(openFileKEKT(t, path))
	if err := k.KEK().CheckWrappedByPrimary(stale); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a record under the old key passes the check under the new primary alone: %v", err)
	}
	live, err := k.Rewrap(stale)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.KEK().CheckWrappedByPrimary(live); err != nil {
		t.Fatalf("the re-wrapped record fails the check: %v", err)
	}
	if _, err := DestroyKEKKeys(path, []uint32{id}); err == nil {
		t.Fatal("DestroyKEKKeys removed the primary")
	}
	n, err := DestroyKEKKeys(path, []uint32{old})
	if err != nil || n != 1 {
		t.Fatalf("DestroyKEKKeys = %d, %v", n, err)
	}
	if n, err := DestroyKEKKeys(path, []uint32{old}); err != nil || n != 0 {
		t.Fatalf("a repeated DestroyKEKKeys = %d, %v; want 0, nil", n, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file after destroy: %v, %v", st, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("files left beside the key file: %v", left)
	}

	after := NewKeyring(openFileKEKT(t, path), Options{CacheSize: -1})
	if got := after.KEK().KeyIDs(); !slices.Equal(got, []uint32{id}) {
		t.Fatalf("key file holds %v, want only %d", got, id)
	}
	if _, err := after.DEK(stale); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("the stale copy opens after the epoch: %v", err)
	}
	d, err := after.DEK(live)
	if err != nil {
		t.Fatalf("the live record does not open after the epoch: %v", err)
	}
	if pt, err := d.Open(ct, ad); err != nil || string(pt) != "phi" {
		t.Fatalf("data sealed before the epoch: %q, %v", pt, err)
	}
}

// TestAddKEKKeyAvoids: a new KEK key never takes an id the caller
// refuses (a retired id the database fences off).
func TestAddKEKKeyAvoids(t *testing.T) {
	path := newKeyFile(t)
	calls := 0
	id, err := AddKEKKey(path, func(uint32) bool { calls++; return calls < 3 })
	if err != nil || calls != 3 {
		t.Fatalf("AddKEKKey = %d, %v after %d calls, want success on the third", id, err, calls)
	}
	if got := openFileKEKT(t, path).KeyIDs(); len(got) != 2 || !slices.Contains(got, id) {
		t.Fatalf("key file holds %v, want the old key and %d", got, id)
	}
	if _, err := AddKEKKey(path, func(uint32) bool { return true }); err == nil {
		t.Fatal("AddKEKKey succeeded although every id was refused")
	}
}

// TestReplaceFileScrubs: temporary files an interrupted write left (they
// may hold retired keys) are zeroed and removed by the next replacement,
// and the replaced file's bytes are overwritten through a descriptor that
// outlives the rename (as a backup agent's open file would show).
func TestReplaceFileScrubs(t *testing.T) {
	path := newKeyFile(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(filepath.Dir(path), tempPrefix(path)+"123")
	if err := os.WriteFile(stale, before, 0o600); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(path) // the old inode, as another process holds it
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := RotateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file survived: %v", err)
	}
	got := make([]byte, len(before))
	if _, err := holder.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, len(before))) {
		t.Error("the replaced key file's bytes were not overwritten")
	}
}

// TestReloadKEK: a keyring installs a key file whose primary is the one
// the database says is in force, even though it lacks keys the keyring
// loaded (destroyed by the epoch), when the caller accepts its primary.
func TestReloadKEK(t *testing.T) {
	path := newKeyFile(t)
	k := NewKeyring(openFileKEKT(t, path), Options{})
	old := k.KEK().PrimaryID()
	notOld := func(p uint32) bool { return p != old }
	if changed, err := k.ReloadKEK(notOld); changed || err != nil {
		t.Fatalf("ReloadKEK of an unchanged file = %v, %v", changed, err)
	}
	id, err := AddKEKKey(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DestroyKEKKeys(path, []uint32{old}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ReloadKEK(func(p uint32) bool { return p != id }); !errors.Is(err, ErrKEKMismatch) {
		t.Fatalf("ReloadKEK refusing the new primary: %v, want ErrKEKMismatch", err)
	}
	if k.KEK().PrimaryID() != old {
		t.Fatal("a refused reload changed the KEK")
	}
	if changed, err := k.ReloadKEK(notOld); !changed || err != nil {
		t.Fatalf("ReloadKEK(new primary) = %v, %v", changed, err)
	}
	if k.KEK().PrimaryID() != id || k.KEK().Has(old) {
		t.Fatalf("after the reload: %v", k.KEK())
	}
}

// TestRewrapAnyOwner: a KEK epoch re-wraps every record whatever its
// owner string (joint owners, names this package does not know), bound
// to that owner.
func TestRewrapAnyOwner(t *testing.T) {
	k := newKeyring(t, Options{})
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := k.record("Joint/4f2a", h, t0)
	if err != nil {
		t.Fatal(err)
	}
	re, err := k.Rewrap(rec)
	if err != nil {
		t.Fatalf("Rewrap of a joint owner: %v", err)
	}
	if err := k.KEK().CheckWrappedByPrimary(re); err != nil {
		t.Fatal(err)
	}
	moved := re
	moved.Owner = "Joint/other"
	if err := k.KEK().CheckWrappedByPrimary(moved); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a re-wrapped key moved to another owner: %v", err)
	}
	if _, err := k.Rewrap(storage.KeyRecord{Owner: "", Wrapped: re.Wrapped}); err == nil {
		t.Fatal("Rewrap accepted an empty owner")
	}
}
