package keys

import (
	"bytes"
	"testing"
)

// BenchmarkSealOpen2KiB seals and opens a typical 2 KiB resource body.
func BenchmarkSealOpen2KiB(b *testing.B) {
	k := newKeyring(b, Options{})
	d := dekOf(b, k, newDEKRec(b, k, "Patient/p1"))
	body := bytes.Repeat([]byte("a"), 2048)
	ad := ResourceAD{"Observation", "o1", 1, "Patient/p1"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ct, err := d.Seal(body, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Open(ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDEKCacheHit measures Keyring.DEK when the DEK is cached: the
// cost paid on every resource read (a SHA-256 of the wrapped key and a
// locked map lookup).
func BenchmarkDEKCacheHit(b *testing.B) {
	k := newKeyring(b, Options{})
	rec := newDEKRec(b, k, "Patient/p1")
	dekOf(b, k, rec)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.DEK(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDEKUnwrap measures a cache miss with a local KEK.
func BenchmarkDEKUnwrap(b *testing.B) {
	k := newKeyring(b, Options{CacheSize: -1})
	rec := newDEKRec(b, k, "Patient/p1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.DEK(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlindIndex measures one search-index hash.
func BenchmarkBlindIndex(b *testing.B) {
	k := newKeyring(b, Options{})
	loadSystemKeys(b, k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.BlindIndex("family\x00smith"); err != nil {
			b.Fatal(err)
		}
	}
}
