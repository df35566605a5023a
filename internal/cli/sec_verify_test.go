package cli_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/record"
)

// secImportSynth creates a data directory holding n synthetic patients
// imported with the CLI.
func secImportSynth(t *testing.T, n int, initArgs ...string) (dir, token string) {
	t.Helper()
	dir, token = secInit(t, initArgs...)
	out := filepath.Join(t.TempDir(), "synth")
	secMustRun(t, "synth", "--patients", fmt.Sprint(n), "--out", out)
	secMustRun(t, "import", "--data", dir, "--quiet", out)
	return dir, token
}

// secUpdateTimes stores k more versions of typ/id through the record
// service (as a PUT would).
func secUpdateTimes(t *testing.T, a *app.App, typ, id string, k int) {
	t.Helper()
	caller := record.Caller{Agent: audit.Agent{User: "test", Client: "test"}, Purpose: "TREAT", Guard: record.Offline()}
	for range k {
		st, err := a.Record.Read(t.Context(), caller, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Record.Parse(st.JSON)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Record.Update(t.Context(), caller, typ, id, res, st.Version); err != nil {
			t.Fatal(err)
		}
	}
}

type secRow struct {
	typ, id string
	version int64
	ct      []byte
}

func (r secRow) ref() string { return fmt.Sprintf("%s/%s/_history/%d", r.typ, r.id, r.version) }

// secRows returns up to n live version rows of typ.
func secRows(t *testing.T, dir string, db *sql.DB, typ string, n int) []secRow {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), secPH(dir, t,
		"SELECT type, id, version, ciphertext FROM resource_versions WHERE type = ? AND NOT deleted ORDER BY id, version LIMIT ?"), typ, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []secRow
	for rows.Next() {
		var r secRow
		if err := rows.Scan(&r.typ, &r.id, &r.version, &r.ct); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < n {
		t.Fatalf("only %d %s rows", len(out), typ)
	}
	return out
}

func secSetCiphertext(t *testing.T, dir string, db *sql.DB, r secRow, ct []byte) {
	t.Helper()
	if n := secExec(t, dir, db, "UPDATE resource_versions SET ciphertext = ? WHERE type = ? AND id = ? AND version = ?", ct, r.typ, r.id, r.version); n != 1 {
		t.Fatalf("tampering %s changed %d rows", r.ref(), n)
	}
}

var secTamperedRE = regexp.MustCompile(`(?m)^TAMPERED (\S+): (.*)$`)

// TestVerifyNamesTamperedRows tampers with the database directly, as an
// attacker with write access to it (or to a backup) could: it flips one
// ciphertext byte, swaps the ciphertexts of two rows and deletes a middle
// version. "phivault verify" must exit non-zero and name exactly those
// rows by reference; before tampering it must pass.
func TestVerifyNamesTamperedRows(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secImportSynth(t, 2, drv.initArgs(t)...)
			db := secDB(t, dir)
			patient := secRows(t, dir, db, "Patient", 1)[0]
			a := secOpenAppNoCleanup(t, dir)
			secUpdateTimes(t, a, "Patient", patient.id, 2) // versions 1, 2, 3
			a.Close()

			ok := secMustRun(t, "verify", "--data", dir)
			if !strings.Contains(ok.stdout, "OK: every stored version") || strings.Contains(ok.stdout, "TAMPERED") {
				t.Fatalf("untampered data did not verify:\n%s", ok.stdout)
			}

			obs := secRows(t, dir, db, "Observation", 3)
			flipped, swapA, swapB := obs[0], obs[1], obs[2]
			ct := append([]byte(nil), flipped.ct...)
			ct[len(ct)/2] ^= 0x01
			secSetCiphertext(t, dir, db, flipped, ct)
			secSetCiphertext(t, dir, db, swapA, swapB.ct)
			secSetCiphertext(t, dir, db, swapB, swapA.ct)
			if n := secExec(t, dir, db, "DELETE FROM resource_versions WHERE type = ? AND id = ? AND version = ?", "Patient", patient.id, 2); n != 1 {
				t.Fatalf("deleting the middle version removed %d rows", n)
			}

			r := secRun(t, "verify", "--data", dir)
			if r.code == 0 {
				t.Fatalf("verify exited 0 on tampered data:\n%s", r.stdout)
			}
			got := map[string]string{}
			for _, m := range secTamperedRE.FindAllStringSubmatch(r.stdout, -1) {
				got[m[1]] = m[2]
			}
			after := fmt.Sprintf("Patient/%s/_history/2", patient.id)
			want := []string{flipped.ref(), swapA.ref(), swapB.ref(), after}
			sort.Strings(want)
			var gotRefs []string
			for ref := range got {
				gotRefs = append(gotRefs, ref)
			}
			sort.Strings(gotRefs)
			if fmt.Sprint(gotRefs) != fmt.Sprint(want) {
				t.Fatalf("verify reported %q, want exactly %q\nstdout:\n%s", gotRefs, want, r.stdout)
			}
			if !strings.HasPrefix(got[after], "missing-version:") {
				t.Errorf("the deleted version is reported as %q, want a missing version", got[after])
			}
			if !strings.Contains(r.stderr, "verification failed: 4 problem(s)") {
				t.Errorf("stderr does not summarise the failure:\n%s", secTail(r.stderr, 500))
			}
		})
	}
}
