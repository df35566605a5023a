package cli_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/keys/lifecycle"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

var (
	secFinalRE    = regexp.MustCompile(`(?m)^erasures final\s+(\d+)$`)
	secPendingRE  = regexp.MustCompile(`(?m)^erasures pending\s+(\d+)`)
	secRetainedRE = regexp.MustCompile(`(?m)^erasures retained\s+(\d+) \(retired KEK keys kept until (\S+)\)$`)
)

// TestKeysShredEpoch drives "keys shred-epoch" beside a running server
// on both drivers: the status before; a run with a retention period
// (the old KEK key stays, the erasure is "retained"); a later run without
// it (destroyed, final); an epoch interrupted while re-wrapping, which
// "keys rotate" refuses to cross and the next run resumes; an epoch
// interrupted after writing its key to the key file, which the next run
// adopts instead of adding another. Throughout, a server opened before
// the epochs keeps reading, is fenced off from wrapping under a retired
// key (503), and follows the epoch. verify passes at the end.
func TestKeysShredEpoch(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 5, drv.initArgs(t)...)
			db := secDB(t, dir)
			pats := secRows(t, dir, db, "Patient", 5)
			kekPath := secConfig(t, dir).Keys.KeyFile

			srv := secOpenApp(t, dir) // another process of the fleet: its KEK is loaded now
			ts := httptest.NewServer(srv.Handler())
			t.Cleanup(ts.Close)
			c := secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()}
			if resp, body := c.do(http.MethodPost, "Patient/"+pats[0].id+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			out := secMustRun(t, "keys", "shred-epoch", "--status", "--data", dir).stdout
			if m := secPendingRE.FindStringSubmatch(out); m == nil || m[1] != "1" {
				t.Fatalf("status after an erasure does not show it pending:\n%s", out)
			}
			k0 := secKEK(t, kekPath)

			// With a retention period the old key stays in the file.
			t.Setenv("PHIVAULT_SHRED_RETENTION_DAYS", "30")
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "ran KEK epoch 1: retained") || !strings.Contains(out, "destroyed 0 KEK keys") {
				t.Fatalf("shred-epoch with retention printed:\n%s", out)
			}
			m := secRetainedRE.FindStringSubmatch(out)
			if m == nil || m[1] != "1" {
				t.Fatalf("the erasure is not shown retained:\n%s", out)
			}
			if until, err := time.Parse(time.RFC3339, m[2]); err != nil || time.Until(until) < 29*24*time.Hour {
				t.Errorf("retained until %q, want 30 days from now", m[2])
			}
			k1 := secKEK(t, kekPath)
			if len(k1.KeyIDs()) != 2 || !k1.Has(k0.PrimaryID()) {
				t.Fatalf("during retention the key file holds %v, want the old and the new key", k1.KeyIDs())
			}
			// The fence: the server still wraps under the retired key.
			resp, body := c.do(http.MethodPost, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Fenced"}]}`))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("a server on the retired KEK created a patient: %s %.200s, want 503", resp.Status, body)
			}
			if resp, body := c.do(http.MethodGet, "Patient/"+pats[1].id, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("reading during retention: %s %.200s", resp.Status, body)
			}

			// The retention recorded for the epoch stands: a run before
			// its end destroys nothing; one after it destroys the key.
			t.Setenv("PHIVAULT_SHRED_RETENTION_DAYS", "0")
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if k := secKEK(t, kekPath); len(k.KeyIDs()) != 2 {
				t.Fatalf("a run before the retention's end changed the key file: %v\n%s", k.KeyIDs(), out)
			}
			sq := secSQL(t, srv)
			secExpireRetention(t, sq)
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "destroyed 1 KEK keys") {
				t.Fatalf("shred-epoch after the retention printed:\n%s", out)
			}
			if m := secFinalRE.FindStringSubmatch(out); m == nil || m[1] != "1" || secPendingRE.MatchString(out) || secRetainedRE.MatchString(out) {
				t.Fatalf("the erasure is not final:\n%s", out)
			}
			if k := secKEK(t, kekPath); len(k.KeyIDs()) != 1 || k.Has(k0.PrimaryID()) {
				t.Fatalf("the key file still holds %v", k.KeyIDs())
			}

			// The server follows the epoch (as serve does) and creates
			// patients again.
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); srv.KeyLifecycle().RunKEKEpochs(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			secEventually(t, func() bool {
				return srv.Keys.KEK().PrimaryID() == k1.PrimaryID() && !srv.Keys.KEK().Has(k0.PrimaryID())
			})
			if resp, body := c.do(http.MethodPost, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Followed"}]}`)); resp.StatusCode != http.StatusCreated {
				t.Errorf("creating a patient after following the epoch: %s %.200s", resp.Status, body)
			}
			cancel()
			<-done

			// An epoch interrupted while re-wrapping.
			if resp, body := c.do(http.MethodPost, "Patient/"+pats[1].id+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			cli := secOpenAppNoCleanup(t, dir)
			ictx, stop := context.WithCancel(t.Context())
			_, err := cli.KeyLifecycle().RunKEKEpoch(ictx, lifecycle.EpochOptions{Progress: func(phase string, _, _ int64) {
				if strings.HasPrefix(phase, "re-wrapping") {
					stop()
				}
			}})
			cli.Close()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("the interrupted epoch: %v", err)
			}
			out = secMustRun(t, "keys", "status", "--data", dir).stdout
			if !strings.Contains(out, "KEK epoch 2          rewrapping") {
				t.Fatalf("status does not show the interrupted epoch:\n%s", out)
			}
			if r := secRun(t, "keys", "rotate", "--data", dir); r.code == 0 || !strings.Contains(r.stderr, "KEK epoch 2 is rewrapping") {
				t.Fatalf("keys rotate during an epoch: exit %d, %s", r.code, r.stderr)
			}
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "resumed KEK epoch 2: complete") || !strings.Contains(out, "destroyed 1 KEK keys") {
				t.Fatalf("resuming printed:\n%s", out)
			}
			k2 := secKEK(t, kekPath)

			// --add-key-only stops once the key is in the file and
			// fenced; the next run finishes.
			if resp, body := c.do(http.MethodPost, "Patient/"+pats[3].id+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			out = secMustRun(t, "keys", "shred-epoch", "--add-key-only", "--data", dir).stdout
			if !strings.Contains(out, "ran KEK epoch 3: rewrapping") {
				t.Fatalf("--add-key-only printed:\n%s", out)
			}
			if k := secKEK(t, kekPath); len(k.KeyIDs()) != 2 {
				t.Fatalf("after --add-key-only the key file holds %v, want the old and the new key", k.KeyIDs())
			}
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "resumed KEK epoch 3: complete") {
				t.Fatalf("the run after --add-key-only printed:\n%s", out)
			}

			// An epoch interrupted after writing its key to the file.
			// (The server, not following, adopts the new file at the
			// first key it cannot open, at most once a second.)
			secEventually(t, func() bool {
				resp, _ := c.do(http.MethodGet, "Patient/"+pats[2].id, nil)
				return resp.StatusCode == http.StatusOK
			})
			if resp, body := c.do(http.MethodPost, "Patient/"+pats[2].id+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase: %s %s", resp.Status, body)
			}
			k2 = secKEK(t, kekPath)
			if err := sq.Epochs().UpdateEpoch(t.Context(), func(tx storage.EpochTx) error {
				return tx.PutEpoch(t.Context(), storage.KEKEpoch{Epoch: 4, State: storage.EpochAdding, PrevPrimary: k2.PrimaryID(),
					Started: time.Now(), Erasures: 1, Holder: "crashed/1/x", Heartbeat: time.Now().Add(-time.Hour)})
			}); err != nil {
				t.Fatal(err)
			}
			added, err := keys.AddKEKKey(kekPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = secMustRun(t, "keys", "shred-epoch", "--data", dir).stdout
			if !strings.Contains(out, "resumed KEK epoch 4: complete") {
				t.Fatalf("resuming after the key was added printed:\n%s", out)
			}
			if k := secKEK(t, kekPath); len(k.KeyIDs()) != 1 || k.PrimaryID() != added {
				t.Fatalf("the resumed epoch did not adopt the added key %d: the file holds %v", added, k.KeyIDs())
			}
			if m := secFinalRE.FindStringSubmatch(out); m == nil || m[1] != "4" {
				t.Fatalf("four erasures are not final:\n%s", out)
			}
			if v := secMustRun(t, "verify", "--data", dir); !strings.Contains(v.stdout, secVerifyOKText) {
				t.Fatalf("verify after the epochs:\n%s", v.stdout)
			}
			// The server, not following epochs any more, adopts the new
			// key file at the first record it cannot open (the database
			// vouches that the missing keys were destroyed); the reload is
			// rate-limited to one a second.
			secEventually(t, func() bool {
				resp, _ := c.do(http.MethodGet, "Patient/"+pats[4].id, nil)
				return resp.StatusCode == http.StatusOK
			})
			// The audit log records each epoch's steps.
			evs, err := srv.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var epochEvents []string
			for _, ev := range evs {
				if ev.Action == "key-epoch" {
					epochEvents = append(epochEvents, strings.Join(ev.Entities, ",")+" "+ev.Policies[0])
				}
			}
			want := []string{"key/kek-epoch/1 state=retained", "key/kek-epoch/1 state=complete", "key/kek-epoch/2 state=retained",
				"key/kek-epoch/2 state=complete", "key/kek-epoch/3 state=retained", "key/kek-epoch/3 state=complete",
				"key/kek-epoch/4 state=retained", "key/kek-epoch/4 state=complete"}
			if strings.Join(epochEvents, ";") != strings.Join(want, ";") {
				t.Errorf("key-epoch audit events %q, want %q", epochEvents, want)
			}
		})
	}
}

func secKEK(t *testing.T, path string) *keys.KEK {
	t.Helper()
	k, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func secSQL(t *testing.T, a *app.App) *sqldb.Store {
	t.Helper()
	sq, ok := a.Store.(*sqldb.Store)
	if !ok {
		t.Fatal("not the SQL store")
	}
	return sq
}

// secExpireRetention moves every retained epoch's destruction date to
// the past, as the passing of the retention period would.
func secExpireRetention(t *testing.T, sq *sqldb.Store) {
	t.Helper()
	es, err := sq.Epochs().Epochs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.State != storage.EpochRetained {
			continue
		}
		e.DestroyAfter = time.Now().Add(-time.Minute)
		if err := sq.Epochs().UpdateEpoch(t.Context(), func(tx storage.EpochTx) error { return tx.PutEpoch(t.Context(), e) }); err != nil {
			t.Fatal(err)
		}
	}
}

func secEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
