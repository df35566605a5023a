package backup

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"
)

func seedManifest() Manifest {
	return Manifest{Format: FormatVersion, Engine: EngineSQLite, Schema: 33, Version: "0.1.0",
		Created:    time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC),
		Checkpoint: Checkpoint{Size: 3, Root: bytes.Repeat([]byte{7}, 32), Note: "log\n3\nroot\n\n— sig\n"},
		KEKIDs:     []uint32{17, 42}, Counts: Counts{Resources: 5, Patients: 1, AuditEvents: 3},
		Files: []File{{Name: sqliteEntry, Size: 4096, SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}}}
}

// FuzzParseManifest: any bytes either parse into a manifest that passes
// its own checks and survives a round trip, or are refused; never a panic.
func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(seedManifest())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"engine":"sqlite","files":[{"name":"../x"}]}`))
	f.Add([]byte(`{"format":1,"engine":"postgres","schema_version":1,"files":[{"name":"pg/0001-a/00000001","size":1,"sha256":"zz"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, file := range m.Files {
			if validEntryName(file.Name) != nil {
				t.Fatalf("accepted entry name %q", file.Name)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v", err)
		}
	})
}

// FuzzParseSummary covers the plaintext sidecar NAME.json.
func FuzzParseSummary(f *testing.F) {
	s, _ := json.Marshal(seedManifest().Summary(NewName(time.Unix(0, 0)), 10, "0000000000000000000000000000000000000000000000000000000000000000"))
	f.Add(s)
	f.Add([]byte(`{"name":"../../etc/passwd","engine":"sqlite"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSummary(b)
		if err != nil {
			return
		}
		if ValidName(s.Name) != nil || s.Size < 0 {
			t.Fatalf("accepted %+v", s)
		}
	})
}

// FuzzParseSum covers NAME.sha256.
func FuzzParseSum(f *testing.F) {
	f.Add([]byte("00000000000000000000000000000000000000000000000000000000000000ff  phivault-x.age\n"))
	f.Add([]byte(""))
	f.Add([]byte("xyz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSum(b)
		if err == nil && len(s) != 64 {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzParseEscrow covers an escrow's decrypted content.
func FuzzParseEscrow(f *testing.F) {
	good, _ := json.Marshal(Escrow{Kind: escrowKind, Format: FormatVersion, KEKIDs: []uint32{1}, KeyFile: []byte("{}")})
	f.Add(good)
	f.Add([]byte(`{"kind":"phivault-kek-escrow"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEscrow(b)
		if err == nil && (len(e.KeyFile) == 0 || len(e.KEKIDs) == 0) {
			t.Fatalf("accepted an empty escrow")
		}
	})
}

// FuzzValidName: an accepted object name never leaves the directory.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"phivault-20261208T010203.000000000Z.age", "..", "a/b", "a\\b", "a\x00", ".", "x..y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != nil {
			return
		}
		if bytes.ContainsAny([]byte(s), "/\\\x00") || s == "." || bytes.Contains([]byte(s), []byte("..")) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzReadArchive: any bytes as a decrypted archive are refused or
// yield a manifest every entry of which matched; never a panic.
func FuzzReadArchive(f *testing.F) {
	var buf bytes.Buffer
	a, _ := newArchiveWriter(&buf, time.Unix(0, 0))
	_ = a.add(sqliteEntry, 3, bytes.NewReader([]byte("abc")))
	m := seedManifest()
	if _, err := a.finish(m, testKEK(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		got, err := readArchive(bytes.NewReader(b), func(string, int64, io.Reader) error { n++; return nil }, minExpansionBudget)
		if err == nil && len(got.m.Files) != n {
			t.Fatalf("manifest lists %d files, %d entries read", len(got.m.Files), n)
		}
	})
}
