package tlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/audit/tlog"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

const origin = "tlog.phivault.example/audit"

type fixture struct {
	st     *sqldb.Store
	log    *audit.Log
	signer *keys.LogSigner
	kept   string
}

func newFixture(t *testing.T, driver string) *fixture {
	t.Helper()
	dir := t.TempDir()
	kf := filepath.Join(dir, "kek.json")
	if err := keys.CreateKeyFile(kf); err != nil {
		t.Fatal(err)
	}
	kek, err := keys.OpenKEK(t.Context(), keys.KEKSource{KeyFile: kf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(kek, keys.Options{})
	rec := func(name ident.Owner) storage.KeyRecord {
		r, err := kr.NewSystemKey(name, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := kr.LoadSystemKeys(rec(keys.SystemBlindIndex), rec(keys.SystemToken), rec(keys.SystemAudit)); err != nil {
		t.Fatal(err)
	}
	signer, err := kr.LoadLogSigner(rec(keys.SystemLogSigner), origin)
	if err != nil {
		t.Fatal(err)
	}
	var st *sqldb.Store
	if driver == "postgres" {
		st, err = postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{MaxConns: 4})
	} else {
		st, err = sqlite.Open(t.Context(), filepath.Join(dir, "phivault.db"), sqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{st: st, log: audit.NewLog(kr), signer: signer, kept: filepath.Join(dir, "checkpoint")}
}

func (f *fixture) open(t *testing.T) *tlog.Log {
	t.Helper()
	l, err := tlog.Open(t.Context(), tlog.Options{
		Store: f.st.TLog(), Signer: f.signer, Origin: origin, Log: f.log, CheckpointFile: f.kept,
		Verifications: f.st, Alerts: sqldb.NewUnit[tlog.Tx](f.st),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (f *fixture) record(t *testing.T, app audit.Appender, n int) {
	t.Helper()
	for i := range n {
		rec, err := f.log.Seal(audit.Event{Time: time.Now().UTC(), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{User: "u", Client: "token"}, Entities: []string{"Observation/o"}, RequestID: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		if err := app.AppendAudit(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// The transparency log integrates what is appended through it, keeps
// the checkpoint outside the database, verifies, records the
// verification for the trust page, and integrates the rest at Close.
func TestLogLifecycle(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver)
			l := f.open(t)
			f.record(t, l.Appender(f.st), 5)
			size, err := l.Integrate(t.Context())
			if err != nil || size != 5 {
				t.Fatalf("Integrate = %d, %v; want 5 leaves", size, err)
			}
			kept, err := l.Kept()
			if err != nil || len(kept) != 1 {
				t.Fatalf("Kept = %d checkpoints, %v; want the one kept outside the database", len(kept), err)
			}
			st, err := l.Status(t.Context())
			if err != nil || st.Size != 5 || st.Alarm != "" || !st.LastVerification.IsZero() || st.VerifierKey != f.signer.VerifierKey() {
				t.Fatalf("Status before a verification = %+v, %v", st, err)
			}
			rep, err := l.Verify(t.Context(), nil)
			if err != nil || rep.Leaves != 5 {
				t.Fatalf("Verify = %+v, %v", rep, err)
			}
			if st, err = l.Status(t.Context()); err != nil || st.LastVerification.IsZero() {
				t.Fatalf("a passed verification is not recorded: %+v, %v", st, err)
			}
			// A verification with another key is the auditor's: it is not
			// recorded as the server's.
			other := newFixture(t, "sqlite")
			if _, err := l.VerifyWith(t.Context(), other.signer.VerifierKey(), nil); err == nil {
				t.Fatal("the log verified under another log's key")
			}
			f.record(t, l.Appender(f.st), 2)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			cp, err := f.st.TLog().LatestCheckpoint(t.Context())
			if err != nil || cp.Size != 7 {
				t.Fatalf("after Close the latest checkpoint covers %d leaves (%v), want 7", cp.Size, err)
			}
			evs, err := f.log.Events(t.Context(), f.st.TLog())
			if err != nil || len(evs) != 7 {
				t.Fatalf("%d events (%v), want 7", len(evs), err)
			}
		})
	}
}

// A log rolled back under the kept checkpoint raises the alarm; Accept
// refuses while the checkpoint is kept, and once the operator moves it
// aside, re-establishes it with an audited high alert.
func TestAcceptAfterLostCheckpoint(t *testing.T) {
	f := newFixture(t, "sqlite")
	l := f.open(t)
	f.record(t, l.Appender(f.st), 3)
	if _, err := l.Integrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(t.Context(), audit.Agent{Client: "cli"}); err == nil {
		t.Fatal("Accept succeeded while a checkpoint is kept")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.kept); err != nil {
		t.Fatal(err)
	}
	l = f.open(t)
	defer l.Close()
	if err := l.Alarm(); !errors.Is(err, merkle.ErrAnchorMissing) {
		t.Fatalf("Alarm with the kept checkpoint gone = %v, want ErrAnchorMissing", err)
	}
	cp, err := l.Accept(t.Context(), audit.Agent{User: "usr_ops", Client: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.kept); err != nil {
		t.Fatalf("the accepted checkpoint was not kept: %v", err)
	}
	alerts, err := f.st.Authz().Alerts(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range alerts {
		found = found || (a.Kind == "audit-log-accepted" && a.Priority == "high" && a.UserID == "usr_ops")
	}
	if !found || cp.Size != 3 {
		t.Fatalf("accept of a %d-leaf log raised %+v, want a high audit-log-accepted alert by usr_ops", cp.Size, alerts)
	}
}
