package smarttest_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// plainSealer seals nothing: the audit records stay readable.
type plainSealer struct{}

func (plainSealer) SealAudit(_ string, b []byte) ([]byte, error) { return b, nil }
func (plainSealer) OpenAudit(_ string, b []byte) ([]byte, error) { return b, nil }

// TestAdminTwoPersonRule: smart.Admin over the SQL store registers an
// app pending with its request; only a second person's session approves
// it, and every refusal is audited as denied.
func TestAdminTwoPersonRule(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	log := audit.NewLog(plainSealer{})
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ca := smart.NewAdmin(smart.AdminOptions{Clients: s.Smart(), Tx: sqldb.NewUnit[smart.AdminTx](s), Appender: s, Log: log,
		Now: func() time.Time { return clock }})
	events := func() []audit.Event {
		var out []audit.Event
		err := s.ScanAudit(ctx, 0, func(_ int64, rec storage.AuditRecord) error {
			b, err := log.Open(rec)
			if err != nil {
				return err
			}
			var ev audit.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				return err
			}
			out = append(out, ev)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	sc, err := scope.ParseSet("openid fhirUser launch/patient patient/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	reg := smart.AppRegistration{Name: "ward app", Public: true, RedirectURIs: []string{"https://app.example/cb"}, Scopes: sc}
	if _, err := ca.RegisterApp(ctx, audit.Agent{Client: "cli"}, reg); !errors.Is(err, smart.ErrRequester) {
		t.Errorf("registration by no account: %v, want ErrRequester", err)
	}
	alice := audit.Agent{User: "usr_alice", Session: "ses_a"}
	id, err := ca.RegisterApp(ctx, alice, reg)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ca.Client(ctx, id); err != nil || c.Approval != smart.ApprovalPending {
		t.Fatalf("registered client %+v, %v; want pending", c, err)
	}
	rs, err := ca.Requests(ctx)
	if err != nil || len(rs) != 1 || rs[0].Client.ID != id || rs[0].Request.RequestedBy != "usr_alice" {
		t.Fatalf("Requests = %+v, %v", rs, err)
	}
	req := rs[0].Request.ID

	for _, tt := range []struct {
		actor audit.Agent
		want  error
	}{
		{audit.Agent{User: "usr_bob"}, identity.ErrApprover}, // an API token, not a session
		{alice, smart.ErrSelfApproval},                       // the registrar and requester
	} {
		before := len(events())
		if _, err := ca.Approve(ctx, tt.actor, req); !errors.Is(err, tt.want) {
			t.Errorf("Approve by %+v: %v, want %v", tt.actor, err, tt.want)
		}
		evs := events()
		if len(evs) != before+1 {
			t.Fatalf("Approve by %+v: %d records, want 1", tt.actor, len(evs)-before)
		}
		if ev := evs[len(evs)-1]; ev.Action != audit.ActionClientGrantApprove || ev.Outcome != audit.OutcomeDenied ||
			!slices.Equal(ev.Entities, []string{"Request/" + req}) || !slices.Equal(ev.Policies, []string{"separation-of-duties"}) {
			t.Errorf("refusal recorded as %+v", ev)
		}
	}
	c, err := ca.Approve(ctx, audit.Agent{User: "usr_bob", Session: "ses_b"}, req)
	if err != nil || c.Approval != smart.ApprovalApproved {
		t.Fatalf("Approve by a second administrator = %+v, %v", c, err)
	}
	if err := ca.Disable(ctx, alice, id); err != nil {
		t.Fatal(err)
	}
	if c, err := ca.Client(ctx, id); err != nil || !c.Disabled {
		t.Errorf("after Disable: %+v, %v", c, err)
	}
}
