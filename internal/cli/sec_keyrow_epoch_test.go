package cli_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// TestKeysShredEpochTamperedKeyRow: a database writer without the key
// file plants rows in keys (random bytes; a copy of a real patient's
// wrapped key under another owner). The KEK epoch is not blocked: it
// skips them, raises one integrity alert per row, and destroys the
// retired KEK key, so the erasure becomes final; verify names both rows.
// A genuine record left under a retired key that the file still holds
// is never skipped: the epoch refuses to destroy that key.
func TestKeysShredEpochTamperedKeyRow(t *testing.T) {
	const planted, copied = "Patient/00000000-0000-4000-8000-0000000000aa", "Patient/00000000-0000-4000-8000-0000000000bb"
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 4, drv.initArgs(t)...)
			db := secDB(t, dir)
			pats := secRows(t, dir, db, "Patient", 4)
			kekPath := secConfig(t, dir).Keys.KeyFile

			random := make([]byte, 48)
			rand.Read(random)
			secExec(t, dir, db, "INSERT INTO keys (owner, wrapped, kek_id, created, shredded) SELECT ?, ?, kek_id, created, shredded FROM keys WHERE owner = ?",
				planted, random, "Patient/"+pats[2].id)
			secExec(t, dir, db, "INSERT INTO keys (owner, wrapped, kek_id, created, shredded) SELECT ?, wrapped, kek_id, created, shredded FROM keys WHERE owner = ?",
				copied, "Patient/"+pats[1].id)
			// An owner longer than any record can have (re-wrapping
			// refuses it before it tries to open it).
			long := "Patient/" + strings.Repeat("x", 2000)
			secExec(t, dir, db, "INSERT INTO keys (owner, wrapped, kek_id, created, shredded) SELECT ?, wrapped, kek_id, created, shredded FROM keys WHERE owner = ?",
				long, "Patient/"+pats[1].id)

			srv := secOpenApp(t, dir)
			ts := httptest.NewServer(srv.Handler())
			t.Cleanup(ts.Close)
			c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
			if resp, body := c.do(http.MethodPost, "Patient/"+pats[0].id+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			k0 := secKEK(t, kekPath)

			// A genuine record under a retired key still in the file
			// (re-wrapped, then its old bytes put back) is not tampered:
			// nothing is destroyed while it depends on the retired key.
			var oldWrapped []byte
			var oldKEK int64
			if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT wrapped, kek_id FROM keys WHERE owner = ?"), "Patient/"+pats[3].id).Scan(&oldWrapped, &oldKEK); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PHIVAULT_SHRED_RETENTION_DAYS", "30")
			out := secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "ran KEK epoch 1: retained") {
				t.Fatalf("shred-epoch with tampered key rows and a retention printed:\n%s", out)
			}
			secExec(t, dir, db, "UPDATE keys SET wrapped = ?, kek_id = ? WHERE owner = ?", oldWrapped, oldKEK, "Patient/"+pats[3].id)
			t.Setenv("PHIVAULT_SHRED_RETENTION_DAYS", "0")
			secExpireRetention(t, secSQL(t, srv))
			r := secRun(t, "keys", "shred-epoch", "--data", dir)
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "still wrapped under retired KEK key") {
				t.Fatalf("a genuine record under the retired key did not stop the destruction: exit %d\n%s\n%s", r.code, r.stdout, secTail(r.stderr, 2000))
			}
			if k := secKEK(t, kekPath); !k.Has(k0.PrimaryID()) {
				t.Fatal("the retired key was destroyed while a genuine record depended on it")
			}

			// Re-wrapped again (as the next epoch would): the planted
			// rows no longer block the destruction.
			srv.Keys.SetKEK(secKEK(t, kekPath))
			nr, err := srv.Keys.Rewrap(secKeyRecord(t, srv, ident.PatientOwner(pats[3].id)))
			if err != nil {
				t.Fatal(err)
			}
			secExec(t, dir, db, "UPDATE keys SET wrapped = ?, kek_id = ? WHERE owner = ?", nr.Wrapped, int64(nr.KEKID), nr.Owner)
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "destroyed 1 KEK keys") {
				t.Fatalf("shred-epoch with tampered key rows did not destroy the retired key:\n%s", out)
			}
			if m := secFinalRE.FindStringSubmatch(out); m == nil || m[1] != "1" || secPendingRE.MatchString(out) || secRetainedRE.MatchString(out) {
				t.Fatalf("the erasure is not final:\n%s", out)
			}
			if k := secKEK(t, kekPath); k.Has(k0.PrimaryID()) {
				t.Fatalf("the key file still holds the retired key: %v", k.KeyIDs())
			}
			for _, o := range []string{planted, copied} {
				var n int
				if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT count(*) FROM authz_alerts WHERE kind = 'key-row-tampered' AND ref = ?"), "key/"+o).Scan(&n); err != nil || n != 1 {
					t.Errorf("alerts naming %s: %d, %v; want 1", o, n, err)
				}
			}
			var n int
			if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM authz_alerts WHERE kind = 'key-row-tampered'").Scan(&n); err != nil || n != 3 {
				t.Errorf("key-row alerts: %d, %v; want 3 (no genuine record named)", n, err)
			}
			// The genuine patients are untouched.
			srv.Keys.SetKEK(secKEK(t, kekPath))
			for _, p := range pats[1:] {
				if resp, body := c.do(http.MethodGet, "Patient/"+p.id, nil); resp.StatusCode != http.StatusOK {
					t.Errorf("reading Patient/%s after the epoch: %s %.200s", p.id, resp.Status, body)
				}
			}

			// A row planted under the key of an epoch in progress is
			// not re-wrapped: the check under that key alone meets it,
			// and skips it too.
			secMustRun(t, "keys", "shred-epoch", "--force", "--add-key-only", "--data", dir)
			k2 := secKEK(t, kekPath)
			secExec(t, dir, db, "INSERT INTO keys (owner, wrapped, kek_id, created, shredded) SELECT ?, ?, ?, created, shredded FROM keys WHERE owner = ?",
				planted+"c", random, int64(k2.PrimaryID()), "Patient/"+pats[2].id)
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "destroyed 1 KEK keys") {
				t.Fatalf("shred-epoch with a row planted under the epoch's key did not destroy the retired key:\n%s", out)
			}
			if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT count(*) FROM authz_alerts WHERE kind = 'key-row-tampered' AND ref = ?"), "key/"+planted+"c").Scan(&n); err != nil || n != 1 {
				t.Errorf("alerts naming the row planted under the epoch's key: %d, %v; want 1", n, err)
			}

			v := secRun(t, "verify", "--data", dir)
			if v.code == 0 {
				t.Fatalf("verify exited 0 with tampered key rows:\n%s", v.stdout)
			}
			for _, o := range []string{planted, copied, planted + "c"} {
				if !strings.Contains(v.stdout, o) {
					t.Errorf("verify does not name the key row of %s:\n%s", o, v.stdout)
				}
			}
			for _, p := range pats[1:] {
				if strings.Contains(v.stdout, "Patient/"+p.id+":") {
					t.Errorf("verify names the genuine Patient/%s:\n%s", p.id, v.stdout)
				}
			}
		})
	}
}

// secKeyRecord reads owner's key record through a's store.
func secKeyRecord(t *testing.T, a *app.App, owner ident.Owner) storage.KeyRecord {
	t.Helper()
	var rec storage.KeyRecord
	if err := a.Store.Update(t.Context(), func(tx storage.Tx) (err error) { rec, err = tx.Key(t.Context(), owner); return err }); err != nil {
		t.Fatal(err)
	}
	return rec
}
