package cli_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
)

// TestEraseCryptoShreds erases a patient over the API and checks, in the
// database itself, that its data key is destroyed, its index rows are
// gone, its old ciphertexts open under no remaining key, reads answer 410,
// other patients are untouched, and the audit trail is kept and grows.
func TestEraseCryptoShreds(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 3, drv.initArgs(t)...)
			db := secDB(t, dir)
			pats := secRows(t, dir, db, "Patient", 3)
			victim, other := pats[0].id, pats[1].id
			owner := "Patient/" + victim
			indexQ := "SELECT COUNT(*) FROM search_index s JOIN resources r ON r.type = s.type AND r.id = s.id WHERE r.owner = ?"
			if n := secCount(t, dir, db, indexQ, owner); n == 0 {
				t.Fatal("the victim has no index rows to begin with")
			}
			all := secAllCiphertexts(t, dir, db)
			var victimRows []secVersion
			for _, v := range all {
				if v.owner == owner {
					victimRows = append(victimRows, v)
				}
			}
			if len(victimRows) < 10 {
				t.Fatalf("the victim owns only %d versions", len(victimRows))
			}
			audit0 := secCount(t, dir, db, secAuditCount)

			srv := secOpenApp(t, dir)
			ts := httptest.NewServer(srv.Handler())
			t.Cleanup(ts.Close)
			c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
			if resp, body := c.do(http.MethodGet, "Patient/"+victim, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("before erase: %s %s", resp.Status, body)
			}
			if resp, body := c.do(http.MethodPost, "Patient/"+victim+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}

			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM keys WHERE owner = ? AND wrapped IS NULL AND shredded = ?", owner, true); n != 1 {
				t.Fatal("the victim's key record still holds a wrapped key")
			}
			if n := secCount(t, dir, db, indexQ, owner); n != 0 {
				t.Errorf("%d index rows of the erased patient remain", n)
			}
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM resources WHERE owner = ? AND NOT deleted", owner); n != 0 {
				t.Errorf("%d resources of the erased patient are still current", n)
			}
			for _, path := range []string{"Patient/" + victim, "Patient/" + victim + "/$everything", victimRows[0].typ + "/" + victimRows[0].id} {
				if resp, body := c.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusGone {
					t.Errorf("GET %s after erase: %s %.200s, want 410", path, resp.Status, body)
				}
			}
			if resp, _ := c.do(http.MethodPost, "Patient/"+victim+"/$erase", nil); resp.StatusCode != http.StatusGone {
				t.Errorf("a second $erase: %s, want 410", resp.Status)
			}
			for _, path := range []string{"Patient/" + other, "Patient/" + other + "/$everything"} {
				if resp, body := c.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s of another patient after erase: %s %.200s", path, resp.Status, body)
				}
			}

			// A fresh process with the KEK (no cached keys) cannot open
			// the victim's old ciphertexts with any key left.
			fresh := secOpenAppNoCleanup(t, dir)
			defer fresh.Close()
			recs := secKeyRecords(t, dir)
			if _, err := fresh.Keys.DEK(recs[ident.Owner(owner)]); !errors.Is(err, keys.ErrShredded) {
				t.Fatalf("the erased patient's key: err %v, want ErrShredded", err)
			}
			tried := 0
			for o, rec := range recs {
				if rec.Shredded || o == "system/blind-index" || o == "system/token" || o == "system/audit" || len(o) > 7 && o[:7] == "system/" {
					continue
				}
				dek, err := fresh.Keys.DEK(rec)
				if err != nil {
					t.Fatalf("opening the key of %s: %v", o, err)
				}
				for _, v := range victimRows {
					for _, ad := range []keys.ResourceAD{
						{Type: v.typ, ID: v.id, Version: v.version, Owner: ident.Owner(v.owner)},
						{Type: v.typ, ID: v.id, Version: v.version, Owner: o},
					} {
						if _, err := dek.Open(v.ct, ad); err == nil {
							t.Fatalf("the key of %s opens erased %s/%s", o, v.typ, v.id)
						}
						tried++
					}
				}
			}
			if still := secCount(t, dir, db, "SELECT COUNT(*) FROM resource_versions WHERE owner = ? AND ciphertext IS NOT NULL", owner); still != 0 {
				t.Errorf("%d of %d ciphertext rows of the erased patient remain", still, len(victimRows))
			}
			rep, err := fresh.Ledger().Verify(t.Context(), nil)
			if err != nil || !rep.OK() || rep.Data.Erased != int64(len(victimRows)) {
				t.Errorf("verify after erase: %+v, %v; want %d erased versions and no problems", rep, err, len(victimRows))
			}

			audit1 := secCount(t, dir, db, secAuditCount)
			if audit1 <= audit0 {
				t.Fatalf("audit_events went from %d to %d across the erase", audit0, audit1)
			}
			c.do(http.MethodGet, "Patient/"+other, nil)
			if audit2 := secCount(t, dir, db, secAuditCount); audit2 <= audit1 {
				t.Errorf("audit_events stopped growing after the erase: %d then %d", audit1, audit2)
			}
			t.Logf("%s: erased %d versions; %d open attempts with the other %d keys all failed", drv.name, len(victimRows), tried, len(recs))
		})
	}
}
