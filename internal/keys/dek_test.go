package keys

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

func TestSealOpenRoundTrip(t *testing.T) {
	k := newKeyring(t, Options{})
	d := dekOf(t, k, newDEKRec(t, k, "Patient/p1"))
	tests := []struct {
		name string
		pt   []byte
		ad   ResourceAD
	}{
		{"empty body", nil, ResourceAD{"Patient", "p1", 1, "Patient/p1"}},
		{"small body", []byte(`{"resourceType":"Patient"}`), ResourceAD{"Patient", "p1", 2, "Patient/p1"}},
		{"large body", bytes.Repeat([]byte("x"), 1<<20), ResourceAD{"Observation", "o-9", 7, "Patient/p1"}},
		{"empty type and id", []byte("b"), ResourceAD{"", "", 0, "Patient/p1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := d.Seal(tt.pt, tt.ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(tt.pt) >= 16 && bytes.Contains(ct, tt.pt) { // short ones may occur by chance
				t.Fatal("ciphertext contains the plaintext")
			}
			if got, want := len(ct), len(tt.pt)+33; got != want {
				t.Errorf("ciphertext length = %d, want %d (5 prefix + 12 nonce + 16 tag)", got, want)
			}
			pt, err := d.Open(ct, tt.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(pt, tt.pt) {
				t.Fatal("Open returned other bytes")
			}
			if id, ok := KeyIDOf(ct); !ok || id != d.PrimaryID() {
				t.Errorf("KeyIDOf = %d, %v, want %d", id, ok, d.PrimaryID())
			}
		})
	}
}

func TestOpenRejectsOtherContext(t *testing.T) {
	k := newKeyring(t, Options{})
	d := dekOf(t, k, newDEKRec(t, k, "Patient/p1"))
	other := dekOf(t, k, newDEKRec(t, k, "Patient/p2"))
	secret := []byte("Jane Doe, HIV positive")
	ad := ResourceAD{Type: "Observation", ID: "o1", Version: 3, Owner: "Patient/p1"}
	ct, err := d.Seal(secret, ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 1; return c }

	tests := []struct {
		name string
		dek  *DEK
		ct   []byte
		ad   ResourceAD
	}{
		{"other type", d, ct, ResourceAD{"Condition", "o1", 3, "Patient/p1"}},
		{"other id", d, ct, ResourceAD{"Observation", "o2", 3, "Patient/p1"}},
		{"other version", d, ct, ResourceAD{"Observation", "o1", 2, "Patient/p1"}},
		{"other owner, same key", d, ct, ResourceAD{"Observation", "o1", 3, "Patient/p2"}},
		{"other owner's key", other, ct, ResourceAD{"Observation", "o1", 3, "Patient/p2"}},
		// Length prefixes keep "ab"+"c" apart from "a"+"bc".
		{"shifted boundary", d, ct, ResourceAD{"Observatio", "no1", 3, "Patient/p1"}},
		{"flipped prefix", d, flip(0), ad},
		{"flipped nonce", d, flip(6), ad},
		{"flipped body", d, flip(20), ad},
		{"flipped tag", d, flip(len(ct) - 1), ad},
		{"truncated", d, ct[:len(ct)-1], ad},
		{"prefix only", d, ct[:5], ad},
		{"empty", d, nil, ad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.dek.Open(tt.ct, tt.ad)
			if err != ErrDecrypt { // exactly the sentinel: no detail
				t.Fatalf("Open error = %v, want ErrDecrypt itself", err)
			}
			if pt != nil {
				t.Fatal("Open returned plaintext with an error")
			}
		})
	}
}

func TestSealRefusesOtherOwner(t *testing.T) {
	k := newKeyring(t, Options{})
	d := dekOf(t, k, newDEKRec(t, k, "Patient/p1"))
	_, err := d.Seal([]byte("x"), ResourceAD{"Observation", "o1", 1, "Patient/p2"})
	if err == nil {
		t.Fatal("Seal with another owner's AD succeeded")
	}
}

func TestWrappedDEKMovedToOtherOwner(t *testing.T) {
	k := newKeyring(t, Options{CacheSize: -1})
	rec := newDEKRec(t, k, "Patient/p1")
	moved := rec
	moved.Owner = "Patient/p2"
	if _, err := k.DEK(moved); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("DEK of a wrap moved to another owner: %v, want ErrDecrypt", err)
	}
	if _, err := k.Rewrap(moved); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Rewrap of a moved wrap: %v, want ErrDecrypt", err)
	}
	tampered := rec
	tampered.Wrapped = bytes.Clone(rec.Wrapped)
	tampered.Wrapped[len(tampered.Wrapped)/2] ^= 1
	if _, err := k.DEK(tampered); err == nil {
		t.Fatal("DEK of a tampered wrap succeeded")
	}
}

func TestShreddedRecord(t *testing.T) {
	k := newKeyring(t, Options{})
	rec := newDEKRec(t, k, "Patient/p1")
	dekOf(t, k, rec) // warm the cache: the shredded check must come first

	flagged := rec
	flagged.Shredded = true
	wiped := rec
	wiped.Wrapped = nil

	ops := []struct {
		name string
		fn   func(storage.KeyRecord) error
	}{
		{"DEK", func(r storage.KeyRecord) error { _, err := k.DEK(r); return err }},
		{"Rewrap", func(r storage.KeyRecord) error { _, err := k.Rewrap(r); return err }},
		{"RotateDEK", func(r storage.KeyRecord) error { _, err := k.RotateDEK(r); return err }},
		{"RetireOldDEKKeys", func(r storage.KeyRecord) error { _, err := k.RetireOldDEKKeys(r); return err }},
	}
	for _, op := range ops {
		for _, rec := range []struct {
			name string
			rec  storage.KeyRecord
		}{{"flag", flagged}, {"nil wrap", wiped}} {
			t.Run(op.name+"/"+rec.name, func(t *testing.T) {
				if err := op.fn(rec.rec); !errors.Is(err, ErrShredded) {
					t.Fatalf("error = %v, want ErrShredded", err)
				}
			})
		}
	}
}

func TestDEKOwnerNames(t *testing.T) {
	k := newKeyring(t, Options{})
	sys, err := k.NewSystemKey(SystemToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.DEK(sys); err == nil {
		t.Error("DEK accepted a system key record")
	}
	if _, err := k.RotateDEK(sys); err == nil {
		t.Error("RotateDEK accepted a system key record")
	}
	for _, owner := range []ident.Owner{"", "Patient/", "system/token", "Patient/a/b", "Organization/1", ident.PatientOwner(strings.Repeat("a", 65))} {
		if _, err := k.NewDEK(owner, t0); err == nil {
			t.Errorf("NewDEK(%q) succeeded", owner)
		}
	}
	for _, owner := range []ident.Owner{"org", "Patient/1", ident.PatientOwner(strings.Repeat("a", 64))} {
		rec, err := k.NewDEK(owner, t0)
		if err != nil {
			t.Errorf("NewDEK(%q): %v", owner, err)
			continue
		}
		if rec.Owner != owner || rec.KEKID != k.KEK().PrimaryID() || !rec.Created.Equal(t0) || rec.Shredded {
			t.Errorf("NewDEK(%q) record = %+v", owner, rec)
		}
	}
}

func TestDEKCache(t *testing.T) {
	clock := &fakeClock{now: t0}
	k := newKeyring(t, Options{CacheSize: 2, CacheTTL: time.Minute, Clock: clock.Now})
	rec := newDEKRec(t, k, "Patient/p1")

	d1 := dekOf(t, k, rec)
	if d2 := dekOf(t, k, rec); d2 != d1 {
		t.Fatal("second DEK call within TTL did not hit the cache")
	}

	h0, m0 := k.DEKCacheStats()
	clock.Advance(59 * time.Second)
	if d := dekOf(t, k, rec); d != d1 {
		t.Fatal("cache missed before TTL")
	}
	clock.Advance(time.Second)
	d3 := dekOf(t, k, rec)
	if h, m := k.DEKCacheStats(); h != h0+1 || m != m0+1 {
		t.Errorf("DEKCacheStats went from %d/%d to %d/%d hits/misses over a hit and an expired entry", h0, m0, h, m)
	}
	if d3 == d1 {
		t.Fatal("cache hit at TTL: entries must expire TTL after unwrapping, however hot")
	}

	k.Forget("Patient/p1")
	if d := dekOf(t, k, rec); d == d3 {
		t.Fatal("Forget did not drop the owner's DEK")
	}

	// A rewrapped record is a new cache key: its DEK opens the same data.
	re, err := k.Rewrap(rec)
	if err != nil {
		t.Fatal(err)
	}
	if d := dekOf(t, k, re); d.PrimaryID() != d3.PrimaryID() {
		t.Fatal("rewrapped DEK has another primary key")
	}

	// Size bound: with room for 2, the least recently used goes.
	k.Forget("Patient/p1")
	a, b, c := newDEKRec(t, k, "Patient/a"), newDEKRec(t, k, "Patient/b"), newDEKRec(t, k, "Patient/c")
	if n := k.cache.len(); n != 2 {
		t.Fatalf("cache holds %d DEKs, want 2", n)
	}
	dc := dekOf(t, k, c)
	db := dekOf(t, k, b)
	if dekOf(t, k, c) != dc || dekOf(t, k, b) != db {
		t.Fatal("recent entries were evicted")
	}
	da := dekOf(t, k, a) // a was evicted: a miss, which evicts c (least recent)
	if dekOf(t, k, a) != da {
		t.Fatal("a was not cached after its miss")
	}
	if dekOf(t, k, c) == dc {
		t.Fatal("least recently used entry c was not evicted")
	}
}

func TestDEKCacheDisabled(t *testing.T) {
	for _, opts := range []Options{{CacheSize: -1}, {CacheTTL: -1}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			k := newKeyring(t, opts)
			rec := newDEKRec(t, k, "Patient/p1")
			if first, second := dekOf(t, k, rec), dekOf(t, k, rec); first == second {
				t.Fatal("disabled cache returned the same DEK twice")
			}
		})
	}
}

func TestDEKRotation(t *testing.T) {
	k := newKeyring(t, Options{})
	rec := newDEKRec(t, k, "Patient/p1")
	ad := ResourceAD{"Observation", "o1", 1, "Patient/p1"}
	d0 := dekOf(t, k, rec)
	oldCT, err := d0.Seal([]byte("v1"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if !d0.SealedWithPrimary(oldCT) {
		t.Fatal("fresh ciphertext not SealedWithPrimary")
	}

	rotated, err := k.RotateDEK(rec)
	if err != nil {
		t.Fatalf("RotateDEK: %v", err)
	}
	if rotated.Owner != rec.Owner || !rotated.Created.Equal(rec.Created) || rotated.KEKID != k.KEK().PrimaryID() {
		t.Errorf("RotateDEK record = %+v", rotated)
	}
	d1 := dekOf(t, k, rotated)
	if d1.PrimaryID() == d0.PrimaryID() {
		t.Fatal("RotateDEK kept the old primary")
	}
	if pt, err := d1.Open(oldCT, ad); err != nil || string(pt) != "v1" {
		t.Fatalf("old ciphertext after rotation: %q, %v", pt, err)
	}
	if d1.SealedWithPrimary(oldCT) {
		t.Error("old ciphertext reported SealedWithPrimary after rotation")
	}
	newCT, err := d1.Seal([]byte("v1"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if !d1.SealedWithPrimary(newCT) {
		t.Error("new ciphertext not SealedWithPrimary")
	}
	if id, _ := KeyIDOf(newCT); id != d1.PrimaryID() {
		t.Errorf("new ciphertext key id = %d, want %d", id, d1.PrimaryID())
	}
	for _, junk := range [][]byte{nil, {1, 2}, append([]byte{0}, newCT[1:]...)} {
		if d1.SealedWithPrimary(junk) {
			t.Errorf("SealedWithPrimary(%x) = true", junk)
		}
	}

	retired, err := k.RetireOldDEKKeys(rotated)
	if err != nil {
		t.Fatalf("RetireOldDEKKeys: %v", err)
	}
	d2 := dekOf(t, k, retired)
	if d2.PrimaryID() != d1.PrimaryID() {
		t.Fatal("RetireOldDEKKeys changed the primary")
	}
	if _, err := d2.Open(oldCT, ad); err != ErrDecrypt {
		t.Fatalf("old ciphertext after retiring: %v, want ErrDecrypt", err)
	}
	if pt, err := d2.Open(newCT, ad); err != nil || string(pt) != "v1" {
		t.Fatalf("new ciphertext after retiring: %q, %v", pt, err)
	}
	if !strings.Contains(d2.String(), "keys=1") {
		t.Errorf("retired DEK = %s, want keys=1", d2)
	}
}

func TestKeyTypesRedact(t *testing.T) {
	k := newKeyring(t, Options{})
	d := dekOf(t, k, newDEKRec(t, k, "Patient/p1"))
	kek := k.KEK()

	tests := []struct {
		name string
		v    any
		want *regexp.Regexp
	}{
		{"DEK", d, regexp.MustCompile(`^keys\.DEK\{owner=Patient/p1, primary=\d+, keys=1\}$`)},
		{"KEK", kek, regexp.MustCompile(`^keys\.KEK\{local key file \(AES-256-GCM, 1 keys, primary \d+\)\}$`)},
		{"Keyring", k, regexp.MustCompile(`^keys\.Keyring\{kek=local key file \(AES-256-GCM, 1 keys, primary \d+\), cached=1\}$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				if got := fmt.Sprintf(verb, tt.v); !tt.want.MatchString(got) {
					t.Errorf("Sprintf(%s) = %q", verb, got)
				}
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", tt.v)
			if strings.Contains(buf.String(), "value") || strings.Contains(buf.String(), "aead") {
				t.Errorf("slog output shows internals: %s", buf.String())
			}
		})
	}
}
