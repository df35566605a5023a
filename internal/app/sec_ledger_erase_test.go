package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// TestErasedContentNotConfirmable plays whoever holds the key file after
// an erasure and guesses an erased Observation exactly (the body as
// stored, its index rows): the commitments keyed with the system ledger
// key that the log used to carry would match the guess. Now each is
// keyed with the owner's ledger key as well, whose secret the erasure
// destroyed with the data key: neither guess is in the log, the owner's
// key can no longer be derived, and the database still verifies.
func TestErasedContentNotConfirmable(t *testing.T) {
	for _, drv := range []string{"sqlite", "postgres"} {
		t.Run(drv, func(t *testing.T) {
			a := openLedgerApp(t, drv)
			ctx := t.Context()
			caller := record.Caller{Agent: audit.Agent{User: "test", Client: "test"}, Purpose: "TREAT", Guard: record.Offline()}
			create := func(js string) record.Stored {
				t.Helper()
				res, err := a.Record.Parse([]byte(js))
				if err != nil {
					t.Fatal(err)
				}
				st, _, err := a.Record.Create(ctx, caller, res, "")
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			p := create(`{"resourceType":"Patient","gender":"female","name":[{"family":"Guessable"}]}`)
			o := create(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/` + p.ID + `"},"valueQuantity":{"value":171,"unit":"cm"}}`)
			owner := ident.PatientOwner(p.ID)

			// A key record made before owner ledger keys (no secret) gets
			// one at its owner's first write; verify checks both below.
			legacy, err := a.Keys.NewDEK("Patient/legacy1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			legacy.Ledger = nil
			if err := a.Store.Update(ctx, func(tx storage.Tx) error { return tx.PutKey(ctx, legacy) }); err != nil {
				t.Fatal(err)
			}
			lres, err := a.Record.Parse([]byte(`{"resourceType":"Patient","id":"legacy1","gender":"male"}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.Record.Update(ctx, caller, "Patient", "legacy1", lres, 0); err != nil {
				t.Fatal(err)
			}
			if rec, err := a.Store.Key(ctx, "Patient/legacy1"); err != nil || rec.Ledger == nil {
				t.Fatalf("the legacy key record after a write: ledger secret %v, %v", rec.Ledger != nil, err)
			}

			// The guess: the stored version and its plaintext, exactly.
			st, err := a.Record.Read(ctx, caller, "Observation", o.ID)
			if err != nil {
				t.Fatal(err)
			}
			v, err := a.Store.VersionOf(ctx, "Observation", o.ID, st.Version)
			if err != nil {
				t.Fatal(err)
			}
			lrec, err := a.Store.Key(ctx, keys.SystemLedger)
			if err != nil {
				t.Fatal(err)
			}
			lk, err := a.Keys.LoadLedgerKey(lrec)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := a.Record.IndexRows("Observation", st.JSON)
			if err != nil {
				t.Fatal(err)
			}
			guessV, guessI := lk.Version(v, st.JSON), lk.Index("Observation", o.ID, rows)

			commits := func() []audit.Commit {
				t.Helper()
				var out []audit.Commit
				err := app.LogEvents(ctx, a, func(ev []byte) {
					var e struct{ Ledger []audit.Commit }
					if json.Unmarshal(ev, &e) == nil {
						out = append(out, e.Ledger...)
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			// Before the erasure the guess is right: the owner's key over it
			// is what the log holds (so the check below is not vacuous).
			prec, err := a.Store.Key(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			ol, err := a.Keys.OwnerLedger(prec)
			if err != nil {
				t.Fatal(err)
			}
			ref := "Observation/" + o.ID + "/_history/1"
			found := false
			for _, cm := range commits() {
				if cm.Ref == ref && cm.Kind == audit.CommitPut {
					found = true
					if cm.Scheme != audit.CommitSchemeOwner || !bytes.Equal(cm.Version, ol.Commit(guessV)) || !bytes.Equal(cm.Index, ol.Commit(guessI)) {
						t.Errorf("the commitment of %s is not the owner-keyed one of its content: %+v", ref, cm)
					}
				}
			}
			if !found {
				t.Fatalf("no commitment of %s in the log", ref)
			}

			if _, err := a.Record.Erase(ctx, caller, p.ID); err != nil {
				t.Fatal(err)
			}
			for _, cm := range commits() {
				if bytes.Equal(cm.Version, guessV) || bytes.Equal(cm.Index, guessI) || bytes.Equal(cm.Version, guessI) || bytes.Equal(cm.Index, guessV) {
					t.Errorf("after the erasure a guess of the erased content matches the log's commitment %s (%s)", cm.Ref, cm.Kind)
				}
			}
			prec, err = a.Store.Key(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			if prec.Ledger != nil {
				t.Error("the erased patient's key record keeps its sealed ledger secret")
			}
			if _, err := a.Keys.OwnerLedger(prec); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("the erased patient's ledger key: %v, want ErrShredded", err)
			}
			rep, err := a.Ledger().Verify(ctx, nil)
			if err != nil || !rep.OK() || rep.Data.Erased == 0 {
				t.Errorf("verify after the erasure: %+v %v", rep.Data, err)
			}
		})
	}
}
