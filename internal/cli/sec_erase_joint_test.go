package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/ledger"
)

// TestEraseJointFromAuthenticatedData tampers with joint_owners the way
// an attacker with write access to the database can before an erasure:
// the row naming the patient is deleted from the joint owner of a
// resource that names the patient and another (the erasure used to miss
// that resource, which stayed readable), and a row naming the patient is
// added to the joint owner of two other patients (so that the erasure
// would destroy their shared data). verify names both owners; the
// erasure shreds the first (its patients are recovered from the
// resource's plaintext, which the AEAD binds to the owner) and leaves
// the second alone. A joint owner whose rows were deleted and which has
// no live version to recover them from fails the next erasure closed.
func TestEraseJointFromAuthenticatedData(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 4, drv.initArgs(t)...)
			db := secDB(t, dir)
			var p []string
			for _, r := range secRows(t, dir, db, "Patient", 4) {
				p = append(p, r.id)
			}
			a := secOpenApp(t, dir)
			ts := httptest.NewServer(a.Handler())
			t.Cleanup(ts.Close)
			c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
			joint := func(subject, performer string) (id, owner string) {
				t.Helper()
				body := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/%s"},"performer":[{"reference":"Patient/%s"}]}`, subject, performer)
				resp, b := c.do(http.MethodPost, "Observation", []byte(body))
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("creating a joint Observation: %s %.300s", resp.Status, b)
				}
				var r struct{ ID string }
				if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
					t.Fatalf("create response: %v %.200s", err, b)
				}
				if err := db.QueryRowContext(t.Context(), secPH(dir, t, "SELECT owner FROM resources WHERE type = 'Observation' AND id = ?"), r.ID).Scan(&owner); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(owner, "Joint/") {
					t.Fatalf("a resource naming two patients is owned by %q", owner)
				}
				return r.ID, owner
			}
			shredded := func(owner string) bool {
				return secCount(t, dir, db, "SELECT COUNT(*) FROM keys WHERE owner = ? AND shredded = ?", owner, true) == 1
			}
			verifyProblems := func() []ledger.Problem {
				t.Helper()
				rep, err := secOpenApp(t, dir).Ledger().Verify(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				return rep.Data.Problems
			}
			has := func(ps []ledger.Problem, ref string, kind ledger.Kind) bool {
				for _, p := range ps {
					if p.Ref == ref && p.Kind == kind {
						return true
					}
				}
				return false
			}

			obsAB, jAB := joint(p[0], p[1])
			obsBC, jBC := joint(p[1], p[2])
			if ps := verifyProblems(); len(ps) != 0 {
				t.Fatalf("verify before tampering: %v", ps)
			}
			secExec(t, dir, db, "DELETE FROM joint_owners WHERE owner = ? AND patient = ?", jAB, "Patient/"+p[0])
			secExec(t, dir, db, "INSERT INTO joint_owners (owner, patient) VALUES (?, ?)", jBC, "Patient/"+p[0])
			ps := verifyProblems()
			if !has(ps, jAB, ledger.KindJointOwner) || !has(ps, jBC, ledger.KindJointOwner) {
				t.Errorf("verify after a joint_owners row was deleted and one added: %v, want joint-owner for both owners", ps)
			}

			// Another process (no cached patients) decides about a joint
			// resource only with the patients its name commits to: with
			// altered rows it refuses (the decision fails closed: 403)
			// rather than decide for the recorded patients.
			ts2 := httptest.NewServer(secOpenApp(t, dir).Handler())
			t.Cleanup(ts2.Close)
			c2 := secFHIR{t: t, base: ts2.URL, token: token, client: ts2.Client()}
			for _, id := range []string{obsAB, obsBC} {
				if resp, b := c2.do(http.MethodGet, "Observation/"+id, nil); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusInternalServerError {
					t.Errorf("reading a joint resource whose rows were altered, in another process: %s %.200s, want a refusal", resp.Status, b)
				}
			}

			if resp, b := c.do(http.MethodPost, "Patient/"+p[0]+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %.300s", resp.Status, b)
			}
			if !shredded(jAB) {
				t.Error("the erasure missed the joint resource whose joint_owners row naming the patient was deleted")
			}
			if shredded(jBC) {
				t.Error("the erasure destroyed the joint key of two other patients through a joint_owners row added for the erased patient")
			}
			if resp, b := c.do(http.MethodGet, "Observation/"+obsAB, nil); resp.StatusCode != http.StatusGone {
				t.Errorf("the joint resource of the erased patient: %s %.200s, want 410", resp.Status, b)
			}
			// A new resource naming the erased patient with another gets no
			// joint key: it would hold the erased patient's information.
			body := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/%s"},"performer":[{"reference":"Patient/%s"}]}`, p[3], p[0])
			if resp, b := c.do(http.MethodPost, "Observation", []byte(body)); resp.StatusCode != http.StatusGone {
				t.Errorf("creating a resource naming an erased patient and another: %s %.200s, want 410", resp.Status, b)
			}
			ps = verifyProblems()
			if has(ps, jAB, ledger.KindErasure) || has(ps, jBC, ledger.KindErasure) {
				t.Errorf("verify after the erasure reports a missed joint owner: %v", ps)
			}
			if !has(ps, jAB, ledger.KindJointOwner) || !has(ps, jBC, ledger.KindJointOwner) {
				t.Errorf("verify after the erasure no longer names the altered rows: %v", ps)
			}

			// Rows deleted from a joint owner with no live version: its
			// patients cannot be told, so the next erasure fails closed.
			obsCD, jCD := joint(p[2], p[3])
			if resp, b := c.do(http.MethodDelete, "Observation/"+obsCD, nil); resp.StatusCode/100 != 2 {
				t.Fatalf("delete: %s %.200s", resp.Status, b)
			}
			secExec(t, dir, db, "DELETE FROM joint_owners WHERE owner = ? AND patient = ?", jCD, "Patient/"+p[3])
			if resp, b := c.do(http.MethodPost, "Patient/"+p[3]+"/$erase", nil); resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("$erase while a joint owner's patients cannot be told: %s %.200s, want 500", resp.Status, b)
			}
			if shredded("Patient/" + p[3]) {
				t.Error("the erasure went ahead while a joint owner that may name the patient could not be checked")
			}
			if !has(verifyProblems(), jCD, ledger.KindJointOwner) {
				t.Errorf("verify does not name the joint owner whose rows were deleted")
			}
		})
	}
}
