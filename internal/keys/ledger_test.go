package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

func newLedgerKey(t testing.TB, k *Keyring) (*LedgerKey, storage.KeyRecord) {
	t.Helper()
	rec, err := k.NewSystemKey(SystemLedger, t0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := k.LoadLedgerKey(rec)
	if err != nil {
		t.Fatal(err)
	}
	return l, rec
}

// TestLedgerCommitmentsBindEveryField: a commitment changes with every
// field of the version row and with one byte of the body, and only
// with them (ADR 0016); the index commitment ignores the order of rows
// but not their multiplicity, kind or values.
func TestLedgerCommitmentsBindEveryField(t *testing.T) {
	k := newKeyring(t, Options{})
	l, rec := newLedgerKey(t, k)
	v := storage.Version{Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p1", LastUpdated: t0, Ciphertext: []byte("ct")}
	body := []byte(`{"resourceType":"Observation"}`)
	base := l.Version(v, body)
	if len(base) != CommitSize {
		t.Fatalf("commitment of %d bytes", len(base))
	}
	if again := l.Version(v, body); !bytes.Equal(again, base) {
		t.Fatal("not deterministic")
	}
	other := v
	other.Ciphertext = []byte("resealed")
	if !bytes.Equal(l.Version(other, body), base) {
		t.Error("the commitment depends on the ciphertext: DEK rotation would break it")
	}
	for name, w := range map[string]storage.Version{
		"type":    {Type: "Observatio", ID: "no1", Version: 2, Owner: "Patient/p1", LastUpdated: t0},
		"id":      {Type: "Observation", ID: "o2", Version: 2, Owner: "Patient/p1", LastUpdated: t0},
		"version": {Type: "Observation", ID: "o1", Version: 1, Owner: "Patient/p1", LastUpdated: t0},
		"owner":   {Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p2", LastUpdated: t0},
		"deleted": {Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p1", LastUpdated: t0, Deleted: true},
		"time":    {Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p1", LastUpdated: t0.Add(1000)},
	} {
		if bytes.Equal(l.Version(w, body), base) {
			t.Errorf("changing the %s leaves the commitment unchanged", name)
		}
	}
	if bytes.Equal(l.Version(v, append(body[:len(body):len(body)], ' ')), base) || bytes.Equal(l.Version(v, nil), base) {
		t.Error("changing the body leaves the commitment unchanged")
	}

	rows := []storage.IndexRow{{Param: "code", Hash: []byte{1, 2}}, {Param: "date", Lo: 1, Hi: 2, IsDate: true}, {Param: "code", Hash: []byte{3}}}
	ix := l.Index("Observation", "o1", rows)
	swapped := []storage.IndexRow{rows[2], rows[0], rows[1]}
	if !bytes.Equal(l.Index("Observation", "o1", swapped), ix) {
		t.Error("the index commitment depends on the order of the rows")
	}
	if !slicesEqualRows(rows, []storage.IndexRow{{Param: "code", Hash: []byte{1, 2}}, {Param: "date", Lo: 1, Hi: 2, IsDate: true}, {Param: "code", Hash: []byte{3}}}) {
		t.Error("Index modified its input")
	}
	for name, w := range map[string][]storage.IndexRow{
		"a row dropped":   rows[:2],
		"a row doubled":   append(append([]storage.IndexRow(nil), rows...), rows[0]),
		"a hash changed":  {{Param: "code", Hash: []byte{1, 3}}, rows[1], rows[2]},
		"a param changed": {{Param: "cod", Hash: []byte{1, 2}}, rows[1], rows[2]},
		"a range changed": {rows[0], {Param: "date", Lo: 1, Hi: 3, IsDate: true}, rows[2]},
		"hash split":      {{Param: "code", Hash: []byte{1}}, rows[1], {Param: "code", Hash: []byte{2, 3}}},
	} {
		if bytes.Equal(l.Index("Observation", "o1", w), ix) {
			t.Errorf("%s: the index commitment is unchanged", name)
		}
	}
	if bytes.Equal(l.Index("Observation", "o2", rows), ix) {
		t.Error("the index commitment does not bind the resource")
	}

	// Another ledger key gives other commitments; the check value tells them apart.
	l2, _ := newLedgerKey(t, k)
	if bytes.Equal(l2.Version(v, body), base) || bytes.Equal(l2.Check(), l.Check()) {
		t.Error("two ledger keys give the same commitments")
	}
	// Only a ledger key record loads, and a destroyed one does not.
	if _, err := k.LoadLedgerKey(storage.KeyRecord{Owner: SystemBlindIndex, Wrapped: rec.Wrapped}); err == nil {
		t.Error("a record of another owner loaded as the ledger key")
	}
	if _, err := k.LoadLedgerKey(storage.KeyRecord{Owner: SystemLedger, Shredded: true}); !errors.Is(err, ErrShredded) {
		t.Errorf("a shredded ledger key: %v, want ErrShredded", err)
	}
	// KEK rotation re-wraps it like any system key.
	if _, err := k.Rewrap(rec); err != nil {
		t.Errorf("re-wrapping the ledger key: %v", err)
	}
}

func slicesEqualRows(a, b []storage.IndexRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Param != b[i].Param || !bytes.Equal(a[i].Hash, b[i].Hash) || a[i].Lo != b[i].Lo || a[i].Hi != b[i].Hi || a[i].IsDate != b[i].IsDate {
			return false
		}
	}
	return true
}

func BenchmarkLedgerCommit(b *testing.B) {
	k := newKeyring(b, Options{})
	l, _ := newLedgerKey(b, k)
	v := storage.Version{Type: "Observation", ID: "0b9f3d1e-6f0a-4c1e-9a53-7b2d0c8e4f11", Version: 1, Owner: "Patient/6c1d2e3f-0a1b-4c5d-8e9f-112233445566", LastUpdated: t0}
	body := bytes.Repeat([]byte("x"), 2048)
	rows := make([]storage.IndexRow, 10)
	for i := range rows {
		rows[i] = storage.IndexRow{Param: "code", Hash: bytes.Repeat([]byte{byte(i)}, BlindIndexSize)}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Version(v, body)
		_ = l.Index(v.Type, v.ID, rows)
	}
}
