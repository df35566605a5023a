package audit_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/audit"
)

// TestBundleRoundTrip: a bundle opens only at the number and width it
// was sealed for, and gives back its leaves and their formats.
func TestBundleRoundTrip(t *testing.T) {
	l := audit.NewLog(&fakeSealer{})
	leaves := [][]byte{[]byte("0123456789abcdef{}"), bytes.Repeat([]byte("x"), 70000), {}, []byte("{\"v1\":1}")}
	v1 := []bool{false, false, false, true}
	sealed, err := l.SealBundle(3, leaves, v1)
	if err != nil {
		t.Fatal(err)
	}
	got, gotV1, err := l.OpenBundle(3, 4, sealed)
	if err != nil || len(got) != 4 || !slices.Equal(gotV1, v1) {
		t.Fatalf("OpenBundle: %d leaves, v1 %v, %v", len(got), gotV1, err)
	}
	for i := range leaves {
		if !bytes.Equal(got[i], leaves[i]) {
			t.Errorf("leaf %d differs", i)
		}
	}
	if _, _, err := l.OpenBundle(4, 4, sealed); err == nil {
		t.Error("opened as another bundle number")
	}
	if _, _, err := l.OpenBundle(3, 3, sealed); err == nil {
		t.Error("opened with another width")
	}
	plain, err := l.SealBundle(0, leaves[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, v, err := l.OpenBundle(0, 1, plain); err != nil || v != nil {
		t.Errorf("bundle without v1 leaves: v1 %v, %v", v, err)
	}
	for _, bad := range [][][]byte{nil, make([][]byte, audit.BundleWidth+1)} {
		if _, err := l.SealBundle(0, bad, nil); err == nil {
			t.Errorf("sealed a bundle of %d leaves", len(bad))
		}
	}
}

// FuzzOpenBundle: whatever plaintext a (fake, pass-through) key yields,
// decoding a bundle returns leaves inside it or ErrBadBundle, never
// panics.
func FuzzOpenBundle(f *testing.F) {
	s := &fakeSealer{}
	l := audit.NewLog(s)
	seed, _ := l.SealBundle(0, [][]byte{[]byte("abc"), []byte("de")}, []bool{false, true})
	f.Add(seed, 2)
	f.Add([]byte("sealed:phivault/audit-bundle/v1 n=0 w=1:\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), 1)
	f.Fuzz(func(t *testing.T, ct []byte, width int) {
		if width < 0 || width > audit.BundleWidth {
			return
		}
		leaves, v1, err := l.OpenBundle(0, width, ct)
		if err != nil {
			if !errors.Is(err, audit.ErrBadBundle) && len(leaves) != 0 {
				t.Fatalf("error with leaves: %v", err)
			}
			return
		}
		if len(leaves) != width || (v1 != nil && len(v1) != width) {
			t.Fatalf("%d leaves, %d flags, want %d", len(leaves), len(v1), width)
		}
	})
}
