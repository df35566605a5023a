package backup_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/backup"
)

// day returns a backup taken at hh:00 UTC on the date.
func bk(name string, y int, m time.Month, d, hh int) backup.Backup {
	return backup.Backup{Name: name, Time: time.Date(y, m, d, hh, 0, 0, 0, time.UTC)}
}

func TestPrune(t *testing.T) {
	// Nightly at 01:00 and noon, 2026-11-01 (a Sunday) to 2026-12-08.
	var nightly []backup.Backup
	for d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC); !d.After(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 1) {
		for _, h := range []int{1, 12} {
			t := d.Add(time.Duration(h) * time.Hour)
			nightly = append(nightly, backup.Backup{Name: t.Format("20060102T15"), Time: t})
		}
	}
	drilled := func(bs []backup.Backup, name string) []backup.Backup {
		out := slices.Clone(bs)
		for i := range out {
			if out[i].Name == name {
				out[i].Drilled = true
			}
		}
		return out
	}
	cases := []struct {
		name    string
		in      []backup.Backup
		policy  backup.Policy
		kept    []string // newest first
		wantErr error
	}{
		{name: "empty", in: nil, policy: backup.Policy{Daily: 7}, kept: nil},
		{name: "one backup, zero policy: kept", in: []backup.Backup{bk("a", 2026, 1, 1, 0)}, kept: []string{"a"}},
		{name: "zero policy keeps the newest only", in: nightly[:6], kept: []string{"20261103T12"}},
		{
			name: "daily 3: the newest of the three latest days", in: nightly, policy: backup.Policy{Daily: 3},
			kept: []string{"20261208T12", "20261207T12", "20261206T12"},
		},
		{
			// ISO weeks: Dec 7 (Mon)-8, Nov 30-Dec 6, Nov 23-29.
			name: "weekly 3", in: nightly, policy: backup.Policy{Weekly: 3},
			kept: []string{"20261208T12", "20261206T12", "20261129T12"},
		},
		{
			name: "monthly 2", in: nightly, policy: backup.Policy{Monthly: 2},
			kept: []string{"20261208T12", "20261130T12"},
		},
		{
			name: "monthly 12 with two months of backups keeps both months", in: nightly, policy: backup.Policy{Monthly: 12},
			kept: []string{"20261208T12", "20261130T12"},
		},
		{
			name: "grandfather-father-son overlaps", in: nightly, policy: backup.Policy{Daily: 2, Weekly: 2, Monthly: 2},
			kept: []string{"20261208T12", "20261207T12", "20261206T12", "20261130T12"},
		},
		{
			name: "the newest drilled backup is kept", in: drilled(drilled(nightly, "20261102T01"), "20261101T01"), policy: backup.Policy{Daily: 1},
			kept: []string{"20261208T12", "20261102T01"},
		},
		{
			name: "a gap in the schedule reaches back", in: []backup.Backup{
				bk("old1", 2026, 10, 1, 1), bk("old2", 2026, 10, 2, 1), bk("old3", 2026, 10, 3, 1), bk("new", 2026, 12, 1, 1),
			}, policy: backup.Policy{Daily: 3},
			kept: []string{"new", "old3", "old2"},
		},
		{name: "negative", in: nightly, policy: backup.Policy{Weekly: -1}, wantErr: errors.New("any")},
		{name: "absurd", in: nightly, policy: backup.Policy{Daily: backup.MaxRetention + 1}, wantErr: errors.New("any")},
		{name: "duplicate names", in: []backup.Backup{bk("a", 2026, 1, 1, 0), bk("a", 2026, 1, 2, 0)}, wantErr: backup.ErrDuplicateName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			del, err := backup.Prune(c.in, c.policy)
			if c.wantErr != nil {
				if err == nil {
					t.Fatal("accepted")
				}
				if errors.Is(c.wantErr, backup.ErrDuplicateName) && !errors.Is(err, backup.ErrDuplicateName) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kept := keptOf(c.in, del)
			if !slices.Equal(kept, c.kept) {
				t.Fatalf("kept %v, want %v (deleted %d)", kept, c.kept, len(del))
			}
		})
	}
}

// keptOf returns the names of in not in del, newest first.
func keptOf(in []backup.Backup, del []string) []string {
	bs := slices.Clone(in)
	slices.SortFunc(bs, func(a, b backup.Backup) int { return b.Time.Compare(a.Time) })
	var out []string
	for _, b := range bs {
		if !slices.Contains(del, b.Name) {
			out = append(out, b.Name)
		}
	}
	return out
}

// FuzzPrune checks the properties of any input: the kept set is never
// empty for a non-empty input, always holds the newest backup and the
// newest drilled one, deletes only names it was given, and pruning the
// kept set again deletes nothing (idempotence).
func FuzzPrune(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(3), uint8(2), uint8(1))
	f.Add([]byte{0xff, 0, 0, 0, 0x80, 1, 1, 1}, uint8(0), uint8(0), uint8(0))
	f.Add([]byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, uint8(30), uint8(8), uint8(12))
	f.Fuzz(func(t *testing.T, data []byte, d, w, m uint8) {
		p := backup.Policy{Daily: int(d % 40), Weekly: int(w % 20), Monthly: int(m % 20)}
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		var in []backup.Backup
		for i := 0; i+4 <= len(data) && len(in) < 500; i += 4 {
			v := binary.BigEndian.Uint32(data[i:])
			// Up to ~2 years of minutes; the low bit marks a passed drill.
			in = append(in, backup.Backup{Name: fmt.Sprintf("b%d", i), Time: base.Add(time.Duration(v>>1%(2*366*24*60)) * time.Minute), Drilled: v&1 == 1})
		}
		del, err := backup.Prune(in, p)
		if err != nil {
			t.Fatal(err)
		}
		kept := keptOf(in, del)
		if len(in) > 0 && len(kept) == 0 {
			t.Fatal("everything deleted")
		}
		if len(in)+0 != len(kept)+len(del) {
			t.Fatalf("deleted %d of %d but kept %d: unknown or repeated names", len(del), len(in), len(kept))
		}
		sorted := slices.Clone(in)
		slices.SortFunc(sorted, func(a, b backup.Backup) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			if a.Name > b.Name {
				return -1
			}
			return 1
		})
		if len(sorted) > 0 && slices.Contains(del, sorted[0].Name) {
			t.Fatalf("the newest backup %s was deleted", sorted[0].Name)
		}
		for _, b := range sorted {
			if b.Drilled {
				if slices.Contains(del, b.Name) {
					t.Fatalf("the newest drilled backup %s was deleted", b.Name)
				}
				break
			}
		}
		var rest []backup.Backup
		for _, b := range in {
			if !slices.Contains(del, b.Name) {
				rest = append(rest, b)
			}
		}
		again, err := backup.Prune(rest, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("not idempotent: a second prune deletes %v", again)
		}
	})
}
