package cli_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// The ledger tamper suite (issue 11, item 11; ADR 0016). A populated
// database goes through every legitimate way of changing stored data
// (import, updates, deletes, a transaction Bundle, $erase, reindex, DEK
// and KEK rotation) and must verify clean; then an attacker with write
// access to the database changes it with plain SQL, one kind of change
// per resource, and "phivault verify" must name each change with its
// kind, and nothing else.

// secLedgerRE matches a problem line of "phivault verify".
var secLedgerRE = regexp.MustCompile(`(?m)^TAMPERED (\S+): ([a-z-]+): (.*)$`)

// secResource is one stored resource picked as a target.
type secResource struct {
	typ, id, owner string
	version        int64
}

func (r secResource) key() string { return r.typ + "/" + r.id }

func (r secResource) ref(v int64) string { return fmt.Sprintf("%s/%s/_history/%d", r.typ, r.id, v) }

// secCurrentRows returns current, live resources of typ (every type
// if empty) owned by owner (any if empty), in id order.
func secCurrentRows(t *testing.T, dir string, db *sql.DB, typ, owner string) []secResource {
	t.Helper()
	q := "SELECT type, id, owner, version FROM resources WHERE (type = ? OR ? = '') AND NOT deleted"
	args := []any{typ, typ}
	if owner != "" {
		q += " AND owner = ?"
		args = append(args, owner)
	}
	rows, err := db.QueryContext(t.Context(), secPH(dir, t, q+" ORDER BY type, id"), args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []secResource
	for rows.Next() {
		var r secResource
		if err := rows.Scan(&r.typ, &r.id, &r.owner, &r.version); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// secVersionTime returns the stored last_updated of one version row.
func secVersionTime(t *testing.T, dir string, db *sql.DB, r secResource, v int64) int64 {
	t.Helper()
	var lu int64
	if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT last_updated FROM resource_versions WHERE type = ? AND id = ? AND version = ?"),
		r.typ, r.id, v).Scan(&lu); err != nil {
		t.Fatalf("time of %s: %v", r.ref(v), err)
	}
	return lu
}

// secBundleJSON is a transaction Bundle: an update of upd, a delete of
// del and a create.
func secBundleJSON(t *testing.T, a *app.App, upd, del secResource) []byte {
	t.Helper()
	st, err := a.Record.Read(t.Context(), secCaller(), upd.typ, upd.id)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(st.JSON, &res); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"resourceType": "Bundle", "type": "transaction",
		"entry": []any{
			map[string]any{"resource": res, "request": map[string]any{"method": "PUT", "url": upd.key()}},
			map[string]any{"request": map[string]any{"method": "DELETE", "url": del.key()}},
			map[string]any{"fullUrl": "urn:uuid:3b1b2c0e-52c2-4b7e-9a50-1b0a1c6b6e01",
				"resource": map[string]any{"resourceType": "Organization", "name": "Ledger Test Clinic"},
				"request":  map[string]any{"method": "POST", "url": "Organization"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secDropAuditTrigger makes the database delete every audit record as
// it is appended (what an attacker does to a record before the
// integrator moves it into the tree); the returned function removes it.
func secDropAuditTrigger(t *testing.T, dir string, db *sql.DB) func() {
	t.Helper()
	if secConfig(t, dir).Storage.Driver == "postgres" {
		secExec(t, dir, db, `CREATE FUNCTION sec_drop_audit() RETURNS trigger AS $$ BEGIN DELETE FROM audit_events WHERE seq = NEW.seq; RETURN NULL; END $$ LANGUAGE plpgsql`)
		secExec(t, dir, db, `CREATE TRIGGER sec_drop_audit AFTER INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION sec_drop_audit()`)
		return func() {
			secExec(t, dir, db, `DROP TRIGGER sec_drop_audit ON audit_events`)
			secExec(t, dir, db, `DROP FUNCTION sec_drop_audit()`)
		}
	}
	secExec(t, dir, db, `CREATE TRIGGER sec_drop_audit AFTER INSERT ON audit_events BEGIN DELETE FROM audit_events WHERE seq = NEW.seq; END`)
	return func() { secExec(t, dir, db, `DROP TRIGGER sec_drop_audit`) }
}

func TestLedgerNamesEveryTampering(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secImportSynth(t, 5, drv.initArgs(t)...)
			db := secDB(t, dir)
			ctx := t.Context()
			pats := secCurrentRows(t, dir, db, "Patient", "")
			if len(pats) < 5 {
				t.Fatalf("%d patients", len(pats))
			}
			rollbackP, indexFrom, indexTo, erased, forgedErasure := pats[0], pats[1], pats[2], pats[3], pats[4]
			obs := secCurrentRows(t, dir, db, "Observation", "Patient/"+rollbackP.id)
			conds := secCurrentRows(t, dir, db, "Condition", "Patient/"+indexFrom.id)
			if len(obs) < 8 || len(conds) < 2 {
				t.Fatalf("%d observations, %d conditions to work with", len(obs), len(conds))
			}
			missing, repoint, forgedMarker, uncommitted, content, deleted := obs[0], obs[1], obs[2], obs[3], obs[4], obs[5]

			// Every legitimate change, then a clean verification.
			a := secOpenAppNoCleanup(t, dir)
			secUpdateTimes(t, a, "Patient", rollbackP.id, 2)   // v3
			secUpdateTimes(t, a, "Observation", repoint.id, 1) // v2
			secUpdateTimes(t, a, "Observation", content.id, 1) // v2
			if err := a.Record.Delete(ctx, secCaller(), deleted.typ, deleted.id); err != nil {
				t.Fatal(err)
			}
			bundle, err := a.Record.Parse(secBundleJSON(t, a, conds[0], conds[1]))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Record.ProcessBundle(ctx, secCaller(), bundle, record.ReturnMinimal); err != nil {
				t.Fatal(err)
			}
			if n, err := a.Record.Erase(ctx, secCaller(), erased.id); err != nil || n == 0 {
				t.Fatalf("erase: %d, %v", n, err)
			}
			if _, err := a.Record.Reindex(ctx, secCaller(), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := a.KeyLifecycle().RotateDEKs(ctx, "", nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.KeyLifecycle().RotateKEK(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Transparency().Integrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.Transparency().CheckAppended(ctx); err != nil || a.Transparency().Alarm() != nil {
				t.Errorf("the server raised an alarm on legitimate changes: %v, %v", err, a.Transparency().Alarm())
			}
			a.Close()
			clean := secMustRun(t, "verify", "--data", dir)
			if !strings.Contains(clean.stdout, "OK: every stored version") || strings.Contains(clean.stdout, "TAMPERED") || strings.Contains(clean.stdout, "NOTICE") {
				t.Fatalf("untampered data after every legitimate change did not verify clean:\n%s", clean.stdout)
			}

			// A write whose audit record is deleted before integration
			// (and the read before it): verify names the write; the
			// running server sees that both records it appended vanished.
			a = secOpenAppNoCleanup(t, dir)
			restore := secDropAuditTrigger(t, dir, db)
			secUpdateTimes(t, a, "Observation", uncommitted.id, 1) // v2, its event gone
			restore()
			// (The server's own periodic check may find them first.)
			if err := a.Transparency().CheckAppended(ctx); err != nil && !errors.Is(err, merkle.ErrVanished) {
				t.Fatal(err)
			}
			if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrVanished) || !strings.Contains(err.Error(), "(2 since start)") {
				t.Errorf("records deleted before integration: alarm %v; want ErrVanished for the read's and the write's records", err)
			}
			a.Close()

			// The other changes, with plain SQL.
			for _, q := range []string{
				"DELETE FROM search_index WHERE type = ? AND id = ?",
				"DELETE FROM resource_versions WHERE type = ? AND id = ?",
				"DELETE FROM resources WHERE type = ? AND id = ?",
			} {
				secExec(t, dir, db, q, missing.typ, missing.id)
			}
			// Rollback: the newest version dropped, the pointer moved back.
			secExec(t, dir, db, "DELETE FROM resource_versions WHERE type = ? AND id = ? AND version = 3", rollbackP.typ, rollbackP.id)
			secExec(t, dir, db, "UPDATE resources SET version = 2, last_updated = ? WHERE type = ? AND id = ?",
				secVersionTime(t, dir, db, rollbackP, 2), rollbackP.typ, rollbackP.id)
			// Repointed: the pointer names the old version, the new one stays.
			secExec(t, dir, db, "UPDATE resources SET version = 1, last_updated = ? WHERE type = ? AND id = ?",
				secVersionTime(t, dir, db, repoint, 1), repoint.typ, repoint.id)
			// A blind-index row of one patient moved to another.
			var param string
			var h []byte
			if err := db.QueryRowContext(ctx, secPH(dir, t, "SELECT param, h FROM search_index WHERE type = 'Patient' AND id = ? AND h IS NOT NULL ORDER BY param LIMIT 1"),
				indexFrom.id).Scan(&param, &h); err != nil {
				t.Fatal(err)
			}
			if n := secExec(t, dir, db, "UPDATE search_index SET id = ? WHERE type = 'Patient' AND id = ? AND param = ? AND h = ?", indexTo.id, indexFrom.id, param, h); n != 1 {
				t.Fatalf("repointing the index row changed %d rows", n)
			}
			// A forged delete marker.
			now := secVersionTime(t, dir, db, forgedMarker, 1) + 1000
			secExec(t, dir, db, "INSERT INTO resource_versions (type, id, version, owner, last_updated, deleted, ciphertext) VALUES (?, ?, 2, ?, ?, ?, NULL)",
				forgedMarker.typ, forgedMarker.id, forgedMarker.owner, now, true)
			secExec(t, dir, db, "UPDATE resources SET version = 2, deleted = ?, last_updated = ? WHERE type = ? AND id = ?", true, now, forgedMarker.typ, forgedMarker.id)
			secExec(t, dir, db, "DELETE FROM search_index WHERE type = ? AND id = ?", forgedMarker.typ, forgedMarker.id)
			// A forged erasure: what Shred does, with no $erase in the log.
			victim := "Patient/" + forgedErasure.id
			victims := secCurrentRows(t, dir, db, "", victim)
			for _, r := range victims {
				secExec(t, dir, db, "INSERT INTO resource_versions (type, id, version, owner, last_updated, deleted, ciphertext) VALUES (?, ?, ?, ?, ?, ?, NULL)",
					r.typ, r.id, r.version+1, r.owner, now, true)
				secExec(t, dir, db, "UPDATE resources SET version = ?, deleted = ?, last_updated = ? WHERE type = ? AND id = ?", r.version+1, true, now, r.typ, r.id)
				secExec(t, dir, db, "DELETE FROM search_index WHERE type = ? AND id = ?", r.typ, r.id)
			}
			secExec(t, dir, db, "UPDATE keys SET wrapped = NULL, shredded = ? WHERE owner = ?", true, victim)
			// An older version's time changed (its content is the log's).
			secExec(t, dir, db, "UPDATE resource_versions SET last_updated = last_updated - 1000000 WHERE type = ? AND id = ? AND version = 1", content.typ, content.id)

			r := secRun(t, "verify", "--data", dir)
			if r.code == 0 {
				t.Fatalf("verify exited 0 on tampered data:\n%s", r.stdout)
			}
			got := map[string]string{} // ref -> kind
			for _, m := range secLedgerRE.FindAllStringSubmatch(r.stdout, -1) {
				if prev, ok := got[m[1]]; ok && prev != m[2] {
					got[m[1]] = prev + "," + m[2]
				} else {
					got[m[1]] = m[2]
				}
			}
			want := map[string]string{
				missing.key():                  "missing-resource",
				rollbackP.ref(3):               "rollback",
				repoint.ref(1):                 "repointed",
				forgedMarker.ref(2):            "forged-marker",
				victim:                         "forged-erasure",
				uncommitted.ref(2):             "uncommitted",
				content.ref(1):                 "content",
				"Patient/" + indexFrom.id + "": "", // checked below: its current version's ref
			}
			delete(want, "Patient/"+indexFrom.id)
			for ref, kind := range want {
				if !strings.Contains(","+got[ref]+",", ","+kind+",") {
					t.Errorf("%s: reported as %q, want %q", ref, got[ref], kind)
				}
			}
			for _, p := range []secResource{indexFrom, indexTo} {
				ref := p.ref(secCurrentVersion(t, dir, db, p))
				if got[ref] != "index" {
					t.Errorf("%s (a blind-index row moved %s): reported as %q, want index", ref, map[bool]string{true: "from it", false: "to it"}[p == indexFrom], got[ref])
				}
			}
			if m := regexp.MustCompile(`(?m)^TAMPERED Patient/` + regexp.QuoteMeta(indexFrom.id) + `/\S+: index: .*` + regexp.QuoteMeta(param) + `: 1 row\(s\) missing`).FindString(r.stdout); m == "" {
				t.Errorf("the index problem does not name the parameter %q whose row moved:\n%s", param, r.stdout)
			}
			for _, v := range victims {
				if ref := v.ref(v.version + 1); got[ref] != "forged-marker" {
					t.Errorf("%s (forged erasure): reported as %q, want forged-marker", ref, got[ref])
				}
			}
			// Nothing else: every problem is on a resource that was changed.
			touched := []string{missing.key(), rollbackP.key(), repoint.key(), forgedMarker.key(), victim, uncommitted.key(), content.key(), indexFrom.key(), indexTo.key()}
			for _, v := range victims {
				touched = append(touched, v.key())
			}
			var stray []string
			for ref := range got {
				ok := false
				for _, k := range touched {
					if ref == k || strings.HasPrefix(ref, k+"/") {
						ok = true
					}
				}
				if !ok {
					stray = append(stray, ref+" "+got[ref])
				}
			}
			sort.Strings(stray)
			if len(stray) > 0 {
				t.Errorf("verify reported untouched resources (crying wolf): %q", stray)
			}
			if t.Failed() {
				t.Logf("verify output:\n%s", r.stdout)
			}
		})
	}
}

func secCurrentVersion(t *testing.T, dir string, db *sql.DB, r secResource) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT version FROM resources WHERE type = ? AND id = ?"), r.typ, r.id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLedgerRewriteCommitted: a maintenance job that rewrites versions
// in place (the "re-own" migration gives resources naming several
// patients a new owner and a new ciphertext) commits the new rows with
// record.CommitRewrites in its transaction, and verify accepts them;
// the same rewrite without that commitment is named.
func TestLedgerRewriteCommitted(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secImportSynth(t, 1, drv.initArgs(t)...)
			db := secDB(t, dir)
			ctx := t.Context()
			pats := secCurrentRows(t, dir, db, "Patient", "")
			obs := secCurrentRows(t, dir, db, "Observation", "Patient/"+pats[0].id)
			committed, forged := obs[0], obs[1]
			const newOwner = "org"
			reown := func(a *app.App, r secResource, commit bool) {
				t.Helper()
				st, err := a.Record.Read(ctx, secCaller(), r.typ, r.id)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := a.Record.IndexRows(r.typ, st.JSON)
				if err != nil {
					t.Fatal(err)
				}
				err = a.Store.Update(ctx, func(tx storage.Tx) error {
					rec, err := tx.Key(ctx, newOwner)
					if err != nil {
						return err
					}
					dek, err := a.Keys.DEK(rec)
					if err != nil {
						return err
					}
					ct, err := dek.Seal(st.JSON, keys.ResourceAD{Type: r.typ, ID: r.id, Version: st.Version, Owner: newOwner})
					if err != nil {
						return err
					}
					if err := tx.RewriteCiphertext(ctx, storage.VersionRef{Type: r.typ, ID: r.id, Version: st.Version}, ct); err != nil {
						return err
					}
					if !commit {
						return nil
					}
					v := storage.Version{Type: r.typ, ID: r.id, Version: st.Version, Owner: newOwner, LastUpdated: st.LastUpdated}
					return a.Record.CommitRewrites(ctx, tx, secCaller(), "re-own", []record.Rewritten{{Version: v, Body: st.JSON, Current: true, Index: rows}})
				})
				if err != nil {
					t.Fatal(err)
				}
				// The owner columns (a job has its own statement for them).
				secExec(t, dir, db, "UPDATE resource_versions SET owner = ? WHERE type = ? AND id = ?", newOwner, r.typ, r.id)
				secExec(t, dir, db, "UPDATE resources SET owner = ? WHERE type = ? AND id = ?", newOwner, r.typ, r.id)
			}
			a := secOpenAppNoCleanup(t, dir)
			reown(a, committed, true)
			a.Close()
			if r := secMustRun(t, "verify", "--data", dir); strings.Contains(r.stdout, "TAMPERED") {
				t.Fatalf("a rewrite committed with CommitRewrites:\n%s", r.stdout)
			}
			a = secOpenAppNoCleanup(t, dir)
			reown(a, forged, false)
			a.Close()
			r := secRun(t, "verify", "--data", dir)
			got := map[string]string{}
			for _, m := range secLedgerRE.FindAllStringSubmatch(r.stdout, -1) {
				got[m[1]] = m[2]
			}
			if r.code == 0 || got[forged.ref(1)] != "content" || len(got) != 1 {
				t.Errorf("a rewrite without its commitment: exit %d, %v; want content on %s\n%s", r.code, got, forged.ref(1), r.stdout)
			}
		})
	}
}
