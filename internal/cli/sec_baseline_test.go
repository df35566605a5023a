package cli_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// secPreLedger stores n patients the way a version before the ledger
// did: sealed and indexed, their time an hour before the ledger started,
// and no commitment in the log. The second is stored in two versions.
func secPreLedger(t *testing.T, a *app.App, n int) []secResource {
	t.Helper()
	ctx := t.Context()
	old := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var out []secResource
	err := a.Store.Update(ctx, func(tx storage.Tx) error {
		out = out[:0]
		for i := range n {
			id := fmt.Sprintf("pre-%d", i)
			owner := ident.PatientOwner(id)
			rec, err := a.Keys.NewDEK(owner, old)
			if err != nil {
				return err
			}
			if err := tx.PutKey(ctx, rec); err != nil {
				return err
			}
			dek, err := a.Keys.DEK(rec)
			if err != nil {
				return err
			}
			versions := int64(1)
			if i == 1 {
				versions = 2
			}
			for v := int64(1); v <= versions; v++ {
				at := old.Add(time.Duration(v) * time.Second)
				body := fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,"meta":{"versionId":"%d","lastUpdated":%q},"gender":"female","name":[{"family":"Before%d"}]}`,
					id, v, at.Format(time.RFC3339Nano), v)
				ct, err := dek.Seal(body, keys.ResourceAD{Type: "Patient", ID: id, Version: v, Owner: owner})
				if err != nil {
					return err
				}
				rows, err := a.Record.IndexRows("Patient", body)
				if err != nil {
					return err
				}
				if err := tx.Put(ctx, storage.Version{Type: "Patient", ID: id, Version: v, Owner: owner, Ciphertext: ct, LastUpdated: at}, rows); err != nil {
					return err
				}
			}
			out = append(out, secResource{typ: "Patient", id: id, owner: owner.String(), version: versions})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyPreLedgerAndBaseline: data written before the ledger has no
// commitment and is reported apart, not as tampering; "verify
// --baseline" commits it once (audited), after which a rollback of it
// and a forged marker dated before the ledger are found, and a second
// baseline is refused.
func TestVerifyPreLedgerAndBaseline(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			a := secOpenAppNoCleanup(t, dir)
			pre := secPreLedger(t, a, 3)
			a.Close()

			r := secMustRun(t, "verify", "--data", dir)
			if !strings.Contains(r.stdout, "NOTICE 4 versions not committed: written before ledger v1") || strings.Contains(r.stdout, "TAMPERED") {
				t.Fatalf("verify of data written before the ledger:\n%s", r.stdout)
			}
			r = secMustRun(t, "verify", "--data", dir, "--baseline")
			if !strings.Contains(r.stdout, "baseline: 4 versions written before the ledger committed") {
				t.Fatalf("verify --baseline:\n%s", r.stdout)
			}
			r = secMustRun(t, "verify", "--data", dir)
			if strings.Contains(r.stdout, "NOTICE") || strings.Contains(r.stdout, "TAMPERED") || !strings.Contains(r.stdout, "OK: ") {
				t.Fatalf("verify after the baseline:\n%s", r.stdout)
			}
			if again := secRun(t, "verify", "--data", dir, "--baseline"); again.code == 0 || !strings.Contains(again.stderr, "already committed") {
				t.Errorf("a second baseline: exit %d\n%s", again.code, secTail(again.stderr, 300))
			}

			db := secDB(t, dir)
			rolled, marked := pre[1], pre[2]
			secExec(t, dir, db, "DELETE FROM resource_versions WHERE type = ? AND id = ? AND version = 2", rolled.typ, rolled.id)
			secExec(t, dir, db, "UPDATE resources SET version = 1, last_updated = ? WHERE type = ? AND id = ?", secVersionTime(t, dir, db, rolled, 1), rolled.typ, rolled.id)
			old := secVersionTime(t, dir, db, marked, 1) + 1
			secExec(t, dir, db, "INSERT INTO resource_versions (type, id, version, owner, last_updated, deleted, ciphertext) VALUES (?, ?, 2, ?, ?, ?, NULL)",
				marked.typ, marked.id, marked.owner, old, true)
			secExec(t, dir, db, "UPDATE resources SET version = 2, deleted = ?, last_updated = ? WHERE type = ? AND id = ?", true, old, marked.typ, marked.id)
			secExec(t, dir, db, "DELETE FROM search_index WHERE type = ? AND id = ?", marked.typ, marked.id)
			r = secRun(t, "verify", "--data", dir)
			got := map[string]string{}
			for _, m := range secLedgerRE.FindAllStringSubmatch(r.stdout, -1) {
				got[m[1]] = m[2]
			}
			if r.code == 0 || got[rolled.ref(2)] != "rollback" || got[marked.ref(2)] != "forged-marker" || len(got) != 2 {
				t.Errorf("tampering with baselined data: exit %d, found %v; want a rollback of %s and a forged marker on %s\n%s",
					r.code, got, rolled.key(), marked.key(), r.stdout)
			}
		})
	}
}
