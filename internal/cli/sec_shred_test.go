package cli_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/keys/keystest"
	"github.com/phivault/phivault/internal/keys/lifecycle"
)

// TestEraseSurvivesForensics is issue 11 item 10's attack, as an outside
// attacker runs it (ADR 0015): patients are imported, one is erased over
// the API, and the attacker, holding the key file, scans the raw database
// files byte by byte (SQLite: the main file with its free pages and the
// -wal file; PostgreSQL: the keys table's relation files and the WAL
// segments written during the test), unwraps every candidate wrapped key
// with every key of the key file, and opens the erased patient's stored
// ciphertexts with what it recovered.
//
// Before the KEK epoch, with the key file as it then is (or as a copy
// taken then, or with retired keys retained), the attack recovers the
// erased patient: this is the defect, and proof that the scanner works.
// After the server's automatic epoch, with the key file as it now is, it
// recovers nothing of the erased patient, while the same scan still
// unwraps the live patients' keys (the scan does see the files).
func TestEraseSurvivesForensics(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			args := drv.initArgs(t)
			var raw secRawFiles
			if drv.name == "postgres" {
				raw = newPGRawFiles(t, args[1])
			}
			dir, token := secImportSynth(t, 3, args...)
			db := secDB(t, dir)
			if raw == nil {
				raw = sqliteRawFiles{path: secConfig(t, dir).Storage.SQLitePath}
			}
			pats := secRows(t, dir, db, "Patient", 3)
			victim, other := pats[0].id, pats[1].id
			owner := "Patient/" + victim
			var victimRows []secVersion
			for _, v := range secAllCiphertexts(t, dir, db) {
				if v.owner == owner {
					victimRows = append(victimRows, v)
				}
			}
			liveOwners := secLiveOwners(t, dir, db)

			srv := secOpenApp(t, dir)
			ts := httptest.NewServer(srv.Handler())
			t.Cleanup(ts.Close)
			c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
			preErase := raw.read(t, db) // the files as an attacker would have copied them before
			if resp, body := c.do(http.MethodPost, "Patient/"+victim+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			kekPath := secConfig(t, dir).Keys.KeyFile
			stolenBefore := filepath.Join(t.TempDir(), "kek-before.json")
			copyFileT(t, kekPath, stolenBefore)

			before := secAttack(t, raw.read(t, db), stolenBefore, owner, victimRows, liveOwners)
			t.Logf("%s before the epoch: %d candidates, %d wrapped keys of the erased patient opened, %d of %d erased versions decrypted",
				drv.name, before.candidates, before.victimKeys, before.opened, len(victimRows))
			if before.opened == 0 {
				// The erasure left no residue this time (SQLite's free
				// pages and WAL were reused or checkpointed: how much is
				// left depends on the write volume before it). The
				// positive control is then the files copied before the
				// erasure: the scanner must find the victim there, or its
				// result after the epoch proves nothing.
				pre := secAttack(t, preErase, stolenBefore, owner, victimRows, liveOwners)
				t.Logf("%s files copied before the erasure: %d candidates, %d erased versions decrypted", drv.name, pre.candidates, pre.opened)
				if pre.opened == 0 {
					t.Fatal("the attack recovers nothing even from the files copied before the erasure: the scanner cannot find the keys, so its result after the epoch proves nothing")
				}
			}

			// The server runs the epoch by itself after the erasure, as
			// "serve" does.
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); srv.KeyLifecycle().RunKEKEpochs(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			st := secAwaitErasureFinal(t, srv)
			if len(st.FileKeys) != 1 || st.Pending != 0 {
				t.Fatalf("after the epoch: %+v", st)
			}

			after := secAttack(t, raw.read(t, db), kekPath, owner, victimRows, liveOwners)
			t.Logf("%s after the epoch: %d candidates, %d live keys opened, %d wrapped keys of the erased patient opened, %d erased versions decrypted",
				drv.name, after.candidates, after.liveKeys, after.victimKeys, after.opened)
			if after.victimKeys != 0 || after.opened != 0 {
				t.Fatalf("with the key file after the epoch the attack recovered %d keys and %d versions of the erased patient", after.victimKeys, after.opened)
			}
			if after.liveKeys == 0 {
				t.Fatal("the scan after the epoch unwrapped no live key either: it did not read the files")
			}
			// Defence in depth, reported: the stolen pre-epoch key file
			// against the files as they are now (SQLite zeroes deleted
			// cells and truncated its WAL; PostgreSQL's WAL keeps them).
			old := secAttack(t, raw.read(t, db), stolenBefore, owner, victimRows, liveOwners)
			t.Logf("%s files after the epoch, key file from before: %d erased versions decrypted", drv.name, old.opened)
			if drv.name == "sqlite" && old.opened != 0 {
				t.Errorf("SQLite's files still hold the erased patient's wrapped key after the epoch (secure_delete and the WAL checkpoint should have removed it): %d versions decrypted with the old key file", old.opened)
			}

			// The server keeps serving, including new patients.
			if resp, body := c.do(http.MethodGet, "Patient/"+other, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("reading another patient after the epoch: %s %.200s", resp.Status, body)
			}
			if resp, body := c.do(http.MethodPost, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Afterepoch"}]}`)); resp.StatusCode != http.StatusCreated {
				t.Errorf("creating a patient after the epoch: %s %.200s", resp.Status, body)
			}
		})
	}
}

// secAttackResult counts what one scan recovered.
type secAttackResult struct {
	candidates int
	victimKeys int // candidates that unwrapped as the erased patient's key
	liveKeys   int // candidates that unwrapped as a live owner's key
	opened     int // erased versions decrypted
}

// secAttack scans blobs for wrapped keys and tries them with every key
// of the key file at kekPath.
func secAttack(t *testing.T, blobs map[string][]byte, kekPath, owner string, victim []secVersion, live []string) secAttackResult {
	t.Helper()
	att, err := keystest.ReadKeyFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	var r secAttackResult
	opened := map[string]bool{}
	seen := map[string]bool{}
	for _, b := range blobs {
		for _, cand := range keystest.Candidates(b) {
			if seen[string(cand)] {
				continue
			}
			seen[string(cand)] = true
			r.candidates++
			if dek, ok := att.Unwrap(cand, owner); ok {
				r.victimKeys++
				for _, v := range victim {
					if _, ok := keystest.Open(dek, v.ct, v.typ, v.id, v.version, v.owner); ok {
						opened[fmt.Sprintf("%s/%s/%d", v.typ, v.id, v.version)] = true
					}
				}
				continue
			}
			for _, o := range live {
				if _, ok := att.Unwrap(cand, o); ok {
					r.liveKeys++
					break
				}
			}
		}
	}
	r.opened = len(opened)
	return r
}

// secLiveOwners lists the owners of live key records (the attacker reads
// them from the keys table).
func secLiveOwners(t *testing.T, dir string, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT owner FROM keys WHERE wrapped IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// secAwaitErasureFinal waits until no erasure is pending or retained and
// no epoch is in progress.
func secAwaitErasureFinal(t *testing.T, a *app.App) lifecycle.ErasureStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := a.KeyLifecycle().ErasureStatus(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, running := st.InProgress()
		if st.Pending == 0 && st.Retained == 0 && !running && len(st.Epochs) > 0 && st.Final > 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the erasure did not become final: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secRawFiles reads the raw database files an attacker would copy.
type secRawFiles interface {
	read(t *testing.T, db *sql.DB) map[string][]byte
}

// sqliteRawFiles is the database file (free pages included) and its WAL.
type sqliteRawFiles struct{ path string }

func (f sqliteRawFiles) read(t *testing.T, _ *sql.DB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range []string{f.path, f.path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// pgRawFiles is the keys table's relation files and the WAL segments
// written since the test began, read from the data directory (the tests
// run as root, the server as postgres).
type pgRawFiles struct {
	dataDir  string
	startSeg string
}

func newPGRawFiles(t *testing.T, url string) secRawFiles {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var f pgRawFiles
	if err := db.QueryRowContext(t.Context(), "SHOW data_directory").Scan(&f.dataDir); err != nil {
		t.Skipf("needs-postgres: the data directory is not readable by this role: %v", err)
	}
	if err := db.QueryRowContext(t.Context(), "SELECT pg_walfile_name(pg_current_wal_lsn())").Scan(&f.startSeg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(filepath.Join(f.dataDir, "pg_wal")); err != nil {
		t.Fatalf("the test process cannot read PostgreSQL's WAL (%v): run the tests as root or as the postgres user", err)
	}
	return f
}

func (f pgRawFiles) read(t *testing.T, db *sql.DB) map[string][]byte {
	t.Helper()
	// A checkpoint writes the shared buffers to the relation files, as a
	// shutdown (or a stolen disk after one) would find them.
	if _, err := db.ExecContext(t.Context(), "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	var rel, endSeg string
	if err := db.QueryRowContext(t.Context(), "SELECT pg_relation_filepath('keys'), pg_walfile_name(pg_current_wal_lsn())").Scan(&rel, &endSeg); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	matches, _ := filepath.Glob(filepath.Join(f.dataDir, rel) + "*") // main fork, segments, fsm, vm
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		out[m] = b
	}
	if len(matches) == 0 {
		t.Fatalf("no relation file for keys at %s", rel)
	}
	ents, err := os.ReadDir(filepath.Join(f.dataDir, "pg_wal"))
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, e := range ents {
		n := e.Name()
		// Segment names sort in WAL order within a timeline.
		if len(n) == 24 && n[:8] == f.startSeg[:8] && n >= f.startSeg && n <= endSeg && !strings.Contains(n, ".") {
			segs = append(segs, n)
		}
	}
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatalf("no WAL segment between %s and %s", f.startSeg, endSeg)
	}
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(f.dataDir, "pg_wal", s))
		if err != nil {
			t.Fatal(err)
		}
		out["pg_wal/"+s] = b
	}
	return out
}

func copyFileT(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
