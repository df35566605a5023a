package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateKeyFile(t *testing.T) {
	path := newKeyFile(t)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	err = CreateKeyFile(path)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateKeyFile error = %v, want one wrapping fs.ErrExist", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second CreateKeyFile changed the existing key file")
	}

	kek := openFileKEKT(t, path)
	if want := "local key file (AES-256-GCM, 1 keys, primary "; !strings.HasPrefix(kek.Description(), want) {
		t.Errorf("Description() = %q, want prefix %q", kek.Description(), want)
	}
	if kek.PrimaryID() == 0 {
		t.Error("PrimaryID() = 0 for a local key file")
	}
}

func TestOpenKEKRefuses(t *testing.T) {
	dir := t.TempDir()
	good := newKeyFile(t)

	open644 := filepath.Join(dir, "open.json")
	copyFile(t, good, open644, 0o644)
	if err := os.Chmod(open644, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	notKeyset := filepath.Join(dir, "junk.json")
	if err := os.WriteFile(notKeyset, []byte(`{"hello":"world"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A PRF keyset is a valid Tink keyset of the wrong type.
	wrongType := filepath.Join(dir, "prf.json")
	if err := os.WriteFile(wrongType, []byte(prfKeysetJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		src     KEKSource
		wantIs  error
		wantSub string
	}{
		{name: "mode 0644", src: KEKSource{KeyFile: open644}, wantSub: "too open"},
		{name: "missing file", src: KEKSource{KeyFile: filepath.Join(dir, "nope")}, wantIs: fs.ErrNotExist},
		{name: "not a keyset", src: KEKSource{KeyFile: notKeyset}, wantSub: "not a Tink JSON keyset"},
		{name: "wrong key type", src: KEKSource{KeyFile: wrongType}, wantSub: "not AES-GCM"},
		{name: "directory", src: KEKSource{KeyFile: dir}, wantSub: "not a regular file"},
		{name: "both set", src: KEKSource{KeyFile: good, URI: "hcvault://v/transit/keys/k"}, wantSub: "not both"},
		{name: "none set", src: KEKSource{}, wantSub: "no key file or KMS URI"},
		{name: "aws", src: KEKSource{URI: "aws-kms://arn:aws:kms:eu-west-1:1:key/x"}, wantIs: ErrUnsupportedKMS, wantSub: `"aws-kms://"`},
		{name: "gcp", src: KEKSource{URI: "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"}, wantIs: ErrUnsupportedKMS, wantSub: `"gcp-kms://"`},
		{name: "no scheme", src: KEKSource{URI: "transit/keys/k"}, wantSub: "no scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenKEK(t.Context(), tt.src, nil)
			if err == nil {
				t.Fatal("OpenKEK succeeded, want error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not contain %q", err, tt.wantSub)
			}
		})
	}
}

func TestRotateKeyFile(t *testing.T) {
	path := newKeyFile(t)
	k1 := NewKeyring(openFileKEKT(t, path), Options{})
	oldRec := newDEKRec(t, k1, "Patient/p1")
	sealed, err := dekOf(t, k1, oldRec).Seal([]byte("old data"), ResourceAD{"Observation", "o1", 1, "Patient/p1"})
	if err != nil {
		t.Fatal(err)
	}

	newPrimary, err := RotateKeyFile(path)
	if err != nil {
		t.Fatalf("RotateKeyFile: %v", err)
	}
	if newPrimary == k1.KEK().PrimaryID() {
		t.Fatal("RotateKeyFile kept the old primary")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("rotated key file mode = %04o, want 0600", got)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	kek2 := openFileKEKT(t, path)
	if kek2.PrimaryID() != newPrimary {
		t.Errorf("reopened PrimaryID() = %d, want %d", kek2.PrimaryID(), newPrimary)
	}
	if !strings.Contains(kek2.Description(), "2 keys") {
		t.Errorf("Description() = %q, want 2 keys", kek2.Description())
	}
	k2 := NewKeyring(kek2, Options{})

	// The old wrap still opens under the rotated KEK.
	d, err := k2.DEK(oldRec)
	if err != nil {
		t.Fatalf("old wrap under rotated KEK: %v", err)
	}
	if pt, err := d.Open(sealed, ResourceAD{"Observation", "o1", 1, "Patient/p1"}); err != nil || string(pt) != "old data" {
		t.Fatalf("Open after KEK rotation = %q, %v", pt, err)
	}

	// Rewrap moves the record to the new primary and keeps the DEK.
	re, err := k2.Rewrap(oldRec)
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if re.KEKID != newPrimary {
		t.Errorf("Rewrap KEKID = %d, want %d", re.KEKID, newPrimary)
	}
	if oldRec.KEKID == re.KEKID || bytes.Equal(oldRec.Wrapped, re.Wrapped) {
		t.Error("Rewrap did not change the wrap")
	}
	if !re.Created.Equal(oldRec.Created) || re.Owner != oldRec.Owner {
		t.Errorf("Rewrap changed owner or creation time: %+v", re)
	}
	if pt, err := dekOf(t, k2, re).Open(sealed, ResourceAD{"Observation", "o1", 1, "Patient/p1"}); err != nil || string(pt) != "old data" {
		t.Fatalf("Open after Rewrap = %q, %v", pt, err)
	}

	// The old KEK (before rotation) cannot open the new wrap. (A Keyring
	// over it would reload the rotated key file: see kekreload_test.go.)
	if _, err := k1.KEK().unwrap(re.Wrapped, re.Owner); !errors.Is(err, ErrDecrypt) {
		t.Errorf("old KEK opening new wrap: %v, want ErrDecrypt", err)
	}
}

func TestRotateKeyFileRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateKeyFile(path); err == nil {
		t.Fatal("RotateKeyFile on a bad file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "{}" {
		t.Error("RotateKeyFile changed a file it refused")
	}
}

// prfKeysetJSON is a cleartext Tink keyset holding an HMAC-SHA256 PRF key
// (test data only: the key is public).
const prfKeysetJSON = `{"primaryKeyId":1,"key":[{"keyData":{"typeUrl":"type.googleapis.com/google.crypto.tink.HmacPrfKey",` +
	`"value":"EgIIAxogAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","keyMaterialType":"SYMMETRIC"},` +
	`"status":"ENABLED","keyId":1,"outputPrefixType":"RAW"}]}`

// TestSetKEKAfterRotation is online KEK rotation in one process: rotate
// the file, reopen it, swap it in; cached and stored DEKs keep working and
// new wraps use the new primary.
func TestSetKEKAfterRotation(t *testing.T) {
	path := newKeyFile(t)
	k := NewKeyring(openFileKEKT(t, path), Options{})
	rec := newDEKRec(t, k, "Patient/p1")
	ad := ResourceAD{"Observation", "o1", 1, "Patient/p1"}
	ct, err := dekOf(t, k, rec).Seal([]byte("x"), ad)
	if err != nil {
		t.Fatal(err)
	}
	newPrimary, err := RotateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k.SetKEK(openFileKEKT(t, path))
	if k.KEK().PrimaryID() != newPrimary {
		t.Fatalf("KEK().PrimaryID() = %d, want %d", k.KEK().PrimaryID(), newPrimary)
	}
	k.Forget("Patient/p1")
	if _, err := dekOf(t, k, rec).Open(ct, ad); err != nil {
		t.Fatalf("old record after SetKEK: %v", err)
	}
	if r2 := newDEKRec(t, k, "Patient/p2"); r2.KEKID != newPrimary {
		t.Errorf("new record KEKID = %d, want %d", r2.KEKID, newPrimary)
	}
}
