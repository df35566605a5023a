package backup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirStore(t *testing.T) {
	st, err := NewDirStore(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.Put(ctx, "a.age", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	rc, err := st.Get(ctx, "a.age")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
	info, err := os.Stat(filepath.Join(st.String(), "a.age"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", info.Mode(), err)
	}
	for _, bad := range []string{"../x", "a/b", "..", "", "a\nb", "a b"} {
		if err := st.Put(ctx, bad, strings.NewReader("x")); !errors.Is(err, ErrBadName) {
			t.Errorf("Put(%q): %v, want ErrBadName", bad, err)
		}
	}
	if _, err := st.Get(ctx, "missing"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Get(missing): %v", err)
	}
	// A failed Put leaves nothing under the name, and no temporary file.
	if err := st.Put(ctx, "b.age", io.MultiReader(strings.NewReader("part"), errReader{})); err == nil {
		t.Fatal("Put of a failing reader succeeded")
	}
	objs, err := st.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Name != "a.age" || objs[0].Size != 5 {
		t.Fatalf("List: %+v %v", objs, err)
	}
	ents, _ := os.ReadDir(st.String())
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after a failed Put", len(ents))
	}
	if err := st.Delete(ctx, "a.age"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "a.age"); err != nil {
		t.Fatalf("Delete of a missing name: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken source") }

// TestArchiveRefusesTampering: a decrypted archive whose entry differs
// from its manifest's hash, or that lost an entry, is refused.
func TestArchiveRefusesTampering(t *testing.T) {
	var buf bytes.Buffer
	a, _ := newArchiveWriter(&buf, seedManifest().Created)
	if err := a.add(sqliteEntry, 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	c := &chunker{a: a, prefix: "pg/0001-t"}
	if _, err := c.Write(bytes.Repeat([]byte("z"), chunkSize+10)); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	kek := testKEK(t)
	m, err := a.finish(seedManifest(), kek)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 3 || m.Files[2].Size != 10 {
		t.Fatalf("files %+v", m.Files)
	}
	got, err := readArchive(bytes.NewReader(buf.Bytes()), func(string, int64, io.Reader) error { return nil }, Limits{}.budget(-1))
	if err != nil || len(got.m.Files) != 3 || checkSeal(kek, got) != nil {
		t.Fatalf("reading back: %v", err)
	}
	// A manifest naming another hash for an entry.
	m.Files[0].SHA256 = strings.Repeat("1", 64)
	var forged bytes.Buffer
	a2, _ := newArchiveWriter(&forged, m.Created)
	_ = a2.add(sqliteEntry, 3, strings.NewReader("abd"))
	a2.files = nil // the forger writes the manifest it likes
	a2.files = append(a2.files, File{Name: sqliteEntry, Size: 3, SHA256: m.Files[0].SHA256})
	if _, err := a2.finish(seedManifest(), kek); err != nil {
		t.Fatal(err)
	}
	if _, err := readArchive(bytes.NewReader(forged.Bytes()), func(string, int64, io.Reader) error { return nil }, Limits{}.budget(-1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an entry that does not match its hash: %v, want ErrCorrupt", err)
	}
}
