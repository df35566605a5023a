package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// TestExportKey: a job key seals and opens its files; a file opened as
// another number, under another job's key, or a key unwrapped for
// another job fails; a destroyed key is ErrShredded; a job key is no
// DEK.
func TestExportKey(t *testing.T) {
	k := newKeyring(t, Options{})
	ek, wrapped, err := k.NewExportKey("JOB1")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := ek.Seal(3, []byte(`{"resourceType":"Patient"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := k.ExportKey("JOB1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Open(3, ct); err != nil || !bytes.HasPrefix(pt, []byte(`{"resourceType"`)) {
		t.Fatalf("reopened key: %v", err)
	}
	if _, err := again.Open(4, ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("file opened as another number: %v", err)
	}
	other, _, err := k.NewExportKey("JOB2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(3, ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("file opened under another job's key: %v", err)
	}
	if _, err := k.ExportKey("JOB2", wrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("key unwrapped for another job: %v", err)
	}
	if _, err := k.ExportKey("JOB1", nil); !errors.Is(err, ErrShredded) {
		t.Fatalf("destroyed key: %v", err)
	}
	if _, err := k.ExportKey("a/b", wrapped); err == nil {
		t.Fatal("a job id with a slash was accepted")
	}
	if _, err := k.DEK(storageKeyRecord(ident.Owner("export/JOB1"), wrapped)); err == nil {
		t.Fatal("a job key opened as a DEK")
	}
	if s := ek.String(); bytes.Contains([]byte(s), wrapped) {
		t.Fatal("String leaks the key")
	}
}

func storageKeyRecord(owner ident.Owner, wrapped []byte) storage.KeyRecord {
	return storage.KeyRecord{Owner: owner, Wrapped: wrapped}
}
