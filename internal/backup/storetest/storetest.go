// Package storetest is the conformance suite of backup.Store: every
// destination of backups (a directory, an S3-compatible bucket) runs
// the same cases, so the engine can rely on one contract.
//
// The suite writes only synthetic bytes; it never needs a backup.
package storetest

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/backup"
)

// LargeSize is the size of the object the suite streams: above 16 MiB,
// so an S3 store must use more than one multipart part and a directory
// store must not hold it in one buffer.
const LargeSize = 16<<20 + 123457

// Run runs every case on fresh stores made by open (each case gets its
// own, empty store; open registers its cleanup with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) backup.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, st backup.Store)
	}{
		{"PutGetListDelete", testPutGetListDelete},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"FailingReaderLeavesNoObject", testFailingReader},
		{"LargeStreamed", testLarge},
		{"EmptyObject", testEmpty},
		{"String", testString},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func put(t *testing.T, st backup.Store, name string, b []byte) {
	t.Helper()
	if err := st.Put(t.Context(), name, bytes.NewReader(b)); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

func get(t *testing.T, st backup.Store, name string) []byte {
	t.Helper()
	rc, err := st.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return b
}

func names(t *testing.T, st backup.Store) []string {
	t.Helper()
	objs, err := st.List(t.Context())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func testPutGetListDelete(t *testing.T, st backup.Store) {
	if got := names(t, st); len(got) != 0 {
		t.Fatalf("a new store lists %v, want nothing", got)
	}
	a := []byte("age-encryption.org/v1\n\x00\xff binary")
	b := []byte(`{"manifest":true}`)
	put(t, st, "phivault-20261208T010203Z.age", a)
	put(t, st, "phivault-20261208T010203Z.manifest.json", b)
	if got := get(t, st, "phivault-20261208T010203Z.age"); !bytes.Equal(got, a) {
		t.Fatalf("get returned %q, want %q", got, a)
	}
	objs, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("list = %v, want 2 objects", objs)
	}
	for _, o := range objs {
		want := int64(len(a))
		if strings.HasSuffix(o.Name, ".json") {
			want = int64(len(b))
		}
		if o.Size != want {
			t.Errorf("%s: size %d, want %d", o.Name, o.Size, want)
		}
		if o.Modified.IsZero() {
			t.Errorf("%s: no modification time", o.Name)
		}
	}
	if err := st.Delete(t.Context(), "phivault-20261208T010203Z.age"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, st); !slices.Equal(got, []string{"phivault-20261208T010203Z.manifest.json"}) {
		t.Fatalf("after delete list = %v", got)
	}
	if _, err := st.Get(t.Context(), "phivault-20261208T010203Z.age"); !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("get after delete: %v, want ErrNotExist", err)
	}
}

func testOverwrite(t *testing.T, st backup.Store) {
	put(t, st, "x.age", []byte("first, longer version"))
	put(t, st, "x.age", []byte("second"))
	if got := get(t, st, "x.age"); string(got) != "second" {
		t.Fatalf("after overwrite get = %q", got)
	}
	if got := names(t, st); !slices.Equal(got, []string{"x.age"}) {
		t.Fatalf("after overwrite list = %v", got)
	}
}

func testMissing(t *testing.T, st backup.Store) {
	_, err := st.Get(t.Context(), "nothing-here.age")
	if !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("get of a missing object: %v, want ErrNotExist", err)
	}
	if err := st.Delete(t.Context(), "nothing-here.age"); err != nil {
		t.Fatalf("delete of a missing object: %v, want nil", err)
	}
}

// failingReader yields n bytes, then fails.
type failingReader struct {
	n   int
	err error
}

var errBroken = errors.New("storetest: the source broke mid-stream")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = byte(i)
	}
	r.n -= k
	return k, nil
}

func testFailingReader(t *testing.T, st backup.Store) {
	for _, n := range []int{0, 1000, LargeSize} { // before, inside and after the first part
		err := st.Put(t.Context(), "broken.age", &failingReader{n: n, err: errBroken})
		if !errors.Is(err, errBroken) {
			t.Fatalf("put from a reader failing after %d bytes: %v, want the reader's error", n, err)
		}
		if got := names(t, st); len(got) != 0 {
			t.Fatalf("a failed put (%d bytes) left %v", n, got)
		}
		if _, err := st.Get(t.Context(), "broken.age"); !errors.Is(err, backup.ErrNotExist) {
			t.Fatalf("get after a failed put: %v, want ErrNotExist", err)
		}
	}
	// A failed overwrite keeps the old object whole.
	put(t, st, "kept.age", []byte("the good one"))
	if err := st.Put(t.Context(), "kept.age", &failingReader{n: 10, err: errBroken}); err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	if got := get(t, st, "kept.age"); string(got) != "the good one" {
		t.Fatalf("a failed overwrite left %q", got)
	}
}

// patterned is a deterministic stream of size bytes that is never held
// in memory whole.
type patterned struct{ off, size int64 }

func (p *patterned) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-p.off))
	for i := range n {
		x := p.off + int64(i)
		b[i] = byte(x*7 + x>>13)
	}
	p.off += int64(n)
	return n, nil
}

func testLarge(t *testing.T, st backup.Store) {
	if err := st.Put(t.Context(), "large.age", &patterned{size: LargeSize}); err != nil {
		t.Fatalf("put of %d bytes: %v", LargeSize, err)
	}
	rc, err := st.Get(t.Context(), "large.age")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// Compare with a fresh copy of the stream, a buffer at a time.
	want := &patterned{size: LargeSize}
	a, b := make([]byte, 1<<16), make([]byte, 1<<16)
	var off int64
	for {
		n, err := io.ReadFull(rc, a)
		if n > 0 {
			if _, werr := io.ReadFull(want, b[:n]); werr != nil {
				t.Fatalf("large object is longer than %d bytes", LargeSize)
			}
			if !bytes.Equal(a[:n], b[:n]) {
				t.Fatalf("large object differs in the %d bytes from offset %d", n, off)
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the large object at %d: %v", off, err)
		}
	}
	if off != LargeSize {
		t.Fatalf("large object read back %d bytes, want %d", off, LargeSize)
	}
	objs, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Size != LargeSize {
		t.Fatalf("list = %+v, want one object of %d bytes", objs, LargeSize)
	}
}

func testEmpty(t *testing.T, st backup.Store) {
	put(t, st, "empty", nil)
	if got := get(t, st, "empty"); len(got) != 0 {
		t.Fatalf("empty object read back %d bytes", len(got))
	}
}

func testString(t *testing.T, st backup.Store) {
	if st.String() == "" {
		t.Fatal("String is empty: an operator cannot tell where backups go")
	}
}
