package cli_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// secSnapshot maps every file under dir to its mode and SHA-256.
func secSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		snap[p] = fmt.Sprintf("%v %s", st.Mode(), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestInitKeyFileExclusive checks that init creates the key file with
// mode 0600 (the log signing key lives in the database, wrapped under it), and that a second init, or an init
// whose key file already exists elsewhere, refuses and changes nothing.
func TestInitKeyFileExclusive(t *testing.T) {
	dir, _ := secInit(t)
	if _, err := os.Stat(filepath.Join(dir, "keys", "log-signer.key")); !os.IsNotExist(err) {
		t.Errorf("init wrote a plaintext log signing key file: %v", err)
	}
	for _, f := range []string{"keys/kek.json", "phivault.json", "tls/server.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", f, st.Mode().Perm())
		}
	}
	before := secSnapshot(t, dir)
	r := secRun(t, "init", "--data", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "init never overwrites") {
		t.Fatalf("second init: exit %d, stderr %q", r.code, r.stderr)
	}
	if secTokenRE.MatchString(r.stdout) {
		t.Error("a refused init printed a token")
	}
	if after := secSnapshot(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a refused init changed the data directory:\nbefore %v\nafter  %v", before, after)
	}

	// A key file that exists (on another volume) is never overwritten,
	// even when the data directory is new.
	kek := filepath.Join(dir, "keys", "kek.json")
	kekBefore, _ := os.ReadFile(kek)
	other := filepath.Join(t.TempDir(), "other")
	r = secRun(t, "init", "--data", other, "--key-file", kek)
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("init onto an existing key file: exit %d, stderr %q", r.code, r.stderr)
	}
	if kekAfter, _ := os.ReadFile(kek); string(kekAfter) != string(kekBefore) {
		t.Fatal("init overwrote an existing key file")
	}
}

var (
	secStatusKEKRE  = regexp.MustCompile(`(?m)^wrapped by KEK (\d+)\s+(\d+) keys( \(primary\))?$`)
	secPrimaryRE    = regexp.MustCompile(`(?m)^KEK primary key id\s+(\d+)$`)
	secDataKeysRE   = regexp.MustCompile(`(?m)^data keys\s+(\d+) patient, (\d+) joint, (\d+) organisation, (\d+) system$`)
	secRotatedRE    = regexp.MustCompile(`new KEK (\d+) is primary; re-wrapped (\d+) keys`)
	secResumedRE    = regexp.MustCompile(`resumed an earlier rotation; re-wrapped (\d+) keys under KEK (\d+)`)
	secReencryptRE  = regexp.MustCompile(`re-encrypted (\d+) versions under new data keys`)
	secVerifyOKText = "OK: every stored version, current pointer and index row is what the signed audit log says"
)

// secStatus runs "keys status" and returns the primary id and the number
// of keys per wrapping KEK id.
func secStatus(t *testing.T, dir string) (primary string, byKEK map[string]string, out string) {
	t.Helper()
	r := secMustRun(t, "keys", "status", "--data", dir)
	m := secPrimaryRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("keys status has no primary id:\n%s", r.stdout)
	}
	byKEK = map[string]string{}
	for _, k := range secStatusKEKRE.FindAllStringSubmatch(r.stdout, -1) {
		byKEK[k[1]] = k[2]
	}
	return m[1], byKEK, r.stdout
}

// secKEKIDs returns the distinct kek_id values of the live key rows.
func secKEKIDs(t *testing.T, dir string) map[int64]int {
	t.Helper()
	db := secDB(t, dir)
	rows, err := db.QueryContext(t.Context(), "SELECT kek_id, COUNT(*) FROM keys WHERE wrapped IS NOT NULL GROUP BY kek_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

// TestKeysRotate covers "keys status", "keys rotate" (a full run, then a
// run resuming an interrupted rotation) and "keys rotate --deks".
func TestKeysRotate(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secImportSynth(t, 3, drv.initArgs(t)...)
			p0, by, out := secStatus(t, dir)
			m := secDataKeysRE.FindStringSubmatch(out)
			if m == nil || m[1] != "3" || m[2] != "0" || m[4] != "6" {
				t.Fatalf("keys status does not count 3 patient, 0 joint and 6 system keys (blind index, token, audit, log signer, ledger, auth rows):\n%s", out)
			}
			if len(by) != 1 || !strings.Contains(out, "(primary)") {
				t.Fatalf("a fresh directory has keys under %v:\n%s", by, out)
			}
			total := by[p0]

			// A full rotation re-wraps every key under a new KEK.
			r := secMustRun(t, "keys", "rotate", "--data", dir)
			rm := secRotatedRE.FindStringSubmatch(r.stdout)
			if rm == nil || rm[1] == p0 || rm[2] != total {
				t.Fatalf("keys rotate printed %q, want a new KEK and %s keys re-wrapped", r.stdout, total)
			}
			p1, by, out := secStatus(t, dir)
			if p1 != rm[1] || len(by) != 1 || by[p1] != total {
				t.Fatalf("after rotation keys status shows %v, want all %s keys under KEK %s:\n%s", by, total, p1, out)
			}
			if !strings.Contains(out, "2 keys, primary "+p1) {
				t.Errorf("the key file should hold the old and the new key:\n%s", out)
			}
			if ids := secKEKIDs(t, dir); len(ids) != 1 {
				t.Errorf("the keys table holds kek ids %v", ids)
			}
			kekPath := secConfig(t, dir).Keys.KeyFile
			if st, _ := os.Stat(kekPath); st.Mode().Perm() != 0o600 {
				t.Errorf("the rotated key file has mode %04o", st.Mode().Perm())
			}

			// Interrupted rotation: the key file was rotated and only
			// half of the records were re-wrapped before the crash.
			p2, err := keys.RotateKeyFile(kekPath)
			if err != nil {
				t.Fatal(err)
			}
			a := secOpenAppNoCleanup(t, dir)
			var recs []storage.KeyRecord
			if err := a.Store.ScanKeys(t.Context(), func(r storage.KeyRecord) error {
				recs = append(recs, r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			half := len(recs) / 2
			for _, rec := range recs[:half] {
				nr, err := a.Keys.Rewrap(rec)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Store.Update(t.Context(), func(tx storage.Tx) error { return tx.ReplaceKey(t.Context(), nr) }); err != nil {
					t.Fatal(err)
				}
			}
			a.Close()
			_, by, out = secStatus(t, dir)
			if len(by) != 2 || !strings.Contains(out, `run "phivault keys rotate" to finish`) {
				t.Fatalf("keys status does not show the unfinished rotation:\n%s", out)
			}
			r = secMustRun(t, "keys", "rotate", "--data", dir)
			rs := secResumedRE.FindStringSubmatch(r.stdout)
			if rs == nil || rs[1] != fmt.Sprint(len(recs)-half) || rs[2] != fmt.Sprint(p2) {
				t.Fatalf("resumed rotation printed %q, want %d keys re-wrapped under %d", r.stdout, len(recs)-half, p2)
			}
			p3, by, out := secStatus(t, dir)
			if p3 != fmt.Sprint(p2) || len(by) != 1 || strings.Contains(out, "to finish") {
				t.Fatalf("after resuming keys status shows %v:\n%s", by, out)
			}
			if v := secMustRun(t, "verify", "--data", dir); !strings.Contains(v.stdout, secVerifyOKText) {
				t.Fatalf("verify after KEK rotation:\n%s", v.stdout)
			}

			// DEK rotation re-encrypts every version and retires the old
			// data keys.
			db := secDB(t, dir)
			old := secAllCiphertexts(t, dir, db)
			oldKeys := secKeyRecords(t, dir)
			r = secMustRun(t, "keys", "rotate", "--deks", "--data", dir)
			rd := secReencryptRE.FindStringSubmatch(r.stdout)
			if rd == nil || rd[1] != fmt.Sprint(len(old)) {
				t.Fatalf("keys rotate --deks printed %q, want %d versions", r.stdout, len(old))
			}
			now := secAllCiphertexts(t, dir, db)
			for ref, ct := range old {
				if string(now[ref].ct) == string(ct.ct) {
					t.Errorf("%s was not re-encrypted", ref)
				}
			}
			if v := secMustRun(t, "verify", "--data", dir); !strings.Contains(v.stdout, secVerifyOKText) || !strings.Contains(v.stdout, fmt.Sprintf("versions %d: %d verified", len(old), len(old))) {
				t.Fatalf("verify after DEK rotation:\n%s", v.stdout)
			}
			a = secOpenApp(t, dir)
			newKeys := secKeyRecords(t, dir)
			opened := 0
			for ref, v := range old {
				st, err := a.Record.VRead(t.Context(), secCaller(), v.typ, v.id, v.version)
				if err != nil {
					t.Fatalf("reading %s after DEK rotation: %v", ref, err)
				}
				if !json.Valid(st.JSON) {
					t.Fatalf("%s is not JSON", ref)
				}
				// The old ciphertext no longer opens with the owner's
				// current keyset: the old DEK keys are gone.
				rec := newKeys[ident.Owner(v.owner)]
				if string(rec.Wrapped) == string(oldKeys[ident.Owner(v.owner)].Wrapped) {
					t.Fatalf("the key of %s was not replaced", v.owner)
				}
				dek, err := a.Keys.DEK(rec)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := dek.Open(v.ct, keys.ResourceAD{Type: v.typ, ID: v.id, Version: v.version, Owner: ident.Owner(v.owner)}); !errors.Is(err, keys.ErrDecrypt) {
					t.Fatalf("a ciphertext of %s sealed before DEK rotation still opens (err %v)", ref, err)
				}
				opened++
			}
			t.Logf("%s: %d versions re-encrypted; old ciphertexts no longer open", drv.name, opened)
		})
	}
}

type secVersion struct {
	typ, id, owner string
	version        int64
	ct             []byte
}

// secAllCiphertexts returns every live version row.
func secAllCiphertexts(t *testing.T, dir string, db *sql.DB) map[string]secVersion {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT type, id, version, owner, ciphertext FROM resource_versions WHERE NOT deleted")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]secVersion{}
	for rows.Next() {
		var v secVersion
		if err := rows.Scan(&v.typ, &v.id, &v.version, &v.owner, &v.ct); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s/%s/_history/%d", v.typ, v.id, v.version)] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func secCaller() record.Caller {
	return record.Caller{Agent: audit.Agent{User: "test", Client: "test"}, Purpose: "TREAT", Guard: record.Offline()}
}

func secKeyRecords(t *testing.T, dir string) map[ident.Owner]storage.KeyRecord {
	t.Helper()
	a := secOpenAppNoCleanup(t, dir)
	defer a.Close()
	out := map[ident.Owner]storage.KeyRecord{}
	if err := a.Store.ScanKeys(t.Context(), func(r storage.KeyRecord) error {
		out[r.Owner] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeysRotateOnline runs a KEK rotation (the CLI, another app instance
// on the same SQLite file) while a server keeps reading and writing, and
// checks that the server keeps working during and after it, including for
// keys it first meets wrapped under the KEK key it has not loaded.
func TestKeysRotateOnline(t *testing.T) {
	dir, token := secImportSynth(t, 6)
	srv := secOpenApp(t, dir)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
	var ids []string
	if err := srv.Store.ScanVersions(t.Context(), storage.VersionRef{}, func(v storage.Version) error {
		if v.Type == "Patient" {
			ids = append(ids, v.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 6 {
		t.Fatalf("%d patients", len(ids))
	}
	// Patients 0-2 are busy during the rotation; 3-5 are first touched
	// after it, so the server meets their keys only under the new KEK.
	busy, later := ids[:3], ids[3:]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	for _, id := range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := secReadUpdate(c, id); err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				requests.Add(1)
			}
		}()
	}
	r := secRun(t, "keys", "rotate", "--data", dir)
	close(stop)
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("keys rotate beside a running server: %s", r.stderr)
	}
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %v", failures.Load(), requests.Load(), firstFailure.Load())
	}
	for _, id := range append(later, busy...) {
		if err := secReadUpdate(c, id); err != nil {
			t.Errorf("after the rotation: %v", err)
		}
	}
	resp, body := c.do(http.MethodPost, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Afterrotation"}]}`))
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("creating a patient after the rotation: %s %s", resp.Status, body)
	}
	t.Logf("%d requests during the rotation", requests.Load())
	if v := secMustRun(t, "verify", "--data", dir); !strings.Contains(v.stdout, secVerifyOKText) {
		t.Fatalf("verify after online rotation:\n%s", v.stdout)
	}
}

// secReadUpdate reads Patient/id and writes it back with If-Match.
func secReadUpdate(c secFHIR, id string) error {
	resp, body := c.do(http.MethodGet, "Patient/"+id, nil)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET Patient/%s: %s %.200s", id, resp.Status, body)
	}
	resp, body = c.do(http.MethodPut, "Patient/"+id, body, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPreconditionFailed {
		return fmt.Errorf("PUT Patient/%s: %s %.200s", id, resp.Status, body)
	}
	return nil
}
