package smarttest_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// clientAdminEnv registers clients through smart.AuditedClients as
// smart.Admin does, with a clock and ids the test controls.
type clientAdminEnv struct {
	t     *testing.T
	s     *sqldb.Store
	mu    sync.Mutex
	clock time.Time
	n     int
}

func (e *clientAdminEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clock = e.clock.Add(time.Second)
	return e.clock
}

func (e *clientAdminEnv) next(prefix string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	return prefix + string(rune('a'+e.n%26)) + string(rune('a'+e.n/26))
}

// pending is the approval request of client c by requester.
func (e *clientAdminEnv) pending(c smart.Client, requester string) smart.ClientPending {
	at := e.now()
	id := e.next(smart.ClientRequestPrefix)
	return smart.ClientPending{
		Request: smart.ClientRequest{ID: id, ClientID: c.ID, RequestedBy: requester, Created: at, Expires: at.Add(smart.ClientRequestTTL)},
		Alert:   authz.Alert{ID: e.next("alr_"), Kind: "client-grant-requested", Priority: "high", UserID: requester, Ref: "Client/" + c.ID, Created: at},
		Audit:   storage.AuditRecord{Time: at, Body: []byte("request " + id)}}
}

// register registers an app as admin usr_reg, through st.
func (e *clientAdminEnv) register(st smart.ClientStore, name string) (string, error) {
	r, err := smart.NewRegistry(st, smart.RegistryOptions{Now: e.now, NewID: func() string { return e.next("client-") }, RegisteredBy: "usr_reg"})
	if err != nil {
		e.t.Fatal(err)
	}
	sc, err := scope.ParseSet("openid fhirUser launch/patient patient/*.rs")
	if err != nil {
		e.t.Fatal(err)
	}
	return r.RegisterApp(e.t.Context(), smart.AppRegistration{Name: name, Public: true, RedirectURIs: []string{"https://app.example/cb"}, Scopes: sc})
}

func (e *clientAdminEnv) audits() int {
	n := 0
	if err := e.s.ScanAudit(e.t.Context(), 0, func(int64, storage.AuditRecord) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *clientAdminEnv) client(id string) smart.Client {
	c, err := e.s.Smart().Client(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *clientAdminEnv) decide(id string, approve bool, by string, now time.Time) (smart.Client, error) {
	_, c, err := smart.DecideClientRequest(e.t.Context(), sqldb.NewUnit[smart.AdminTx](e.s), id, smart.ClientDecision{Approve: approve, By: by, Now: now,
		Alert: authz.Alert{ID: e.next("alr_"), Kind: "client-grant-approved", Priority: "high", UserID: by, Created: now},
		Audit: func(r smart.ClientRequest, c smart.Client) (storage.AuditRecord, error) {
			return storage.AuditRecord{Time: now, Body: []byte("decide " + r.ID + " " + string(c.Approval))}, nil
		}})
	return c, err
}

// testClientAdmin: registration commits the client with its audit
// record (and, for a client that reaches PHI, its approval request,
// alert and audit record) or nothing; the list is newest first; the
// two-person rule holds in storage (no self-approval, no approval of an
// expired request, one decision per request even when two approvers
// race); disabling is audited and an unknown client is
// smart.ErrNotFound.
func testClientAdmin(t *testing.T, s *sqldb.Store) {
	ctx := t.Context()
	e := &clientAdminEnv{t: t, s: s, clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	sealed := 0
	ok := smart.AuditedClients{ClientStore: s.Smart(), Tx: sqldb.NewUnit[smart.AdminTx](s), Seal: func(c smart.Client) (storage.AuditRecord, error) {
		sealed++
		return storage.AuditRecord{Body: []byte("register " + c.ID)}, nil
	}, Pending: func(c smart.Client) (smart.ClientPending, error) { return e.pending(c, "usr_alice"), nil }}
	failingSeal := ok
	failingSeal.Seal = func(smart.Client) (storage.AuditRecord, error) {
		return storage.AuditRecord{}, errors.New("sealing failed")
	}
	failingRequest := ok
	failingRequest.Pending = func(smart.Client) (smart.ClientPending, error) {
		return smart.ClientPending{}, errors.New("no request")
	}
	noRequest := ok
	noRequest.Pending = nil
	badAlert := ok
	badAlert.Pending = func(c smart.Client) (smart.ClientPending, error) {
		p := e.pending(c, "usr_alice")
		p.Alert.ID = "" // refused inside the transaction
		return p, nil
	}

	before := e.audits()
	first, err := e.register(ok, "first")
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]smart.ClientStore{"unaudited": failingSeal, "no request": failingRequest, "nil request": noRequest, "bad alert": badAlert} {
		if _, err := e.register(st, name); err == nil {
			t.Fatalf("registration (%s) succeeded", name)
		}
	}
	second, err := e.register(ok, "second")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.audits() - before; got != 4 {
		t.Errorf("%d audit records, want 4 (two registrations and two requests)", got)
	}
	cs, err := s.Smart().Clients(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != second || cs[1].ID != first || cs[0].RedirectURIs[0] != "https://app.example/cb" ||
		cs[0].Approval != smart.ApprovalPending || cs[0].RegisteredBy != "usr_reg" {
		t.Fatalf("clients %+v", cs)
	}
	reqs, err := s.Smart().ClientRequests(ctx, e.clock, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 || reqs[0].ClientID != first || reqs[1].ClientID != second || reqs[0].RequestedBy != "usr_alice" {
		t.Fatalf("requests %+v", reqs)
	}
	if got, err := s.Smart().ClientRequest(ctx, reqs[0].ID); err != nil || got != reqs[0] {
		t.Fatalf("request %+v %v, want %+v", got, err, reqs[0])
	}
	if _, err := smart.RequestClientApproval(ctx, sqldb.NewUnit[smart.AdminTx](s), e.pending(e.client(first), "usr_bob")); !errors.Is(err, smart.ErrApprovalPending) {
		t.Errorf("a second request for one client: %v, want ErrApprovalPending", err)
	}

	// Neither the requester nor the registrar approves; another admin does.
	for _, self := range []string{"usr_alice", "usr_reg", ""} {
		if _, err := e.decide(reqs[0].ID, true, self, e.now()); !errors.Is(err, smart.ErrSelfApproval) {
			t.Errorf("approval by %q: %v, want ErrSelfApproval", self, err)
		}
	}
	if c := e.client(first); c.Approval != smart.ApprovalPending {
		t.Fatalf("after refused approvals the client is %q", c.Approval)
	}
	c, err := e.decide(reqs[0].ID, true, "usr_bob", e.now())
	if err != nil || c.Approval != smart.ApprovalApproved || c.ApprovedBy != "usr_bob" {
		t.Fatalf("approval: %+v %v", c, err)
	}
	if c := e.client(first); c.Approval != smart.ApprovalApproved || c.ApprovedBy != "usr_bob" || !c.Active() {
		t.Fatalf("approved client as stored: %+v", c)
	}
	if _, err := e.decide(reqs[0].ID, true, "usr_carol", e.now()); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("deciding a decided request: %v, want ErrNotFound", err)
	}
	if _, err := smart.RequestClientApproval(ctx, sqldb.NewUnit[smart.AdminTx](s), e.pending(e.client(first), "usr_bob")); !errors.Is(err, smart.ErrNotPending) {
		t.Errorf("a request for an approved client: %v, want ErrNotPending", err)
	}
	alerts, err := s.Authz().Alerts(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, a := range alerts {
		if a.Ref == "Client/"+first {
			kinds[a.Kind]++
		}
	}
	if kinds["client-grant-requested"] != 1 || kinds["client-grant-approved"] != 1 {
		t.Errorf("alerts about the first client: %v", kinds)
	}

	// The requester withdraws: the client is rejected for good.
	if _, err := e.decide(reqs[1].ID, false, "usr_alice", e.now()); err != nil {
		t.Fatal(err)
	}
	if c := e.client(second); c.Approval != smart.ApprovalRejected || c.Active() {
		t.Fatalf("withdrawn client: %+v", c)
	}
	if _, err := smart.RequestClientApproval(ctx, sqldb.NewUnit[smart.AdminTx](s), e.pending(e.client(second), "usr_alice")); !errors.Is(err, smart.ErrNotPending) {
		t.Errorf("a request for a rejected client: %v, want ErrNotPending", err)
	}

	// An expired request cannot be approved; a new one can.
	third, err := e.register(ok, "third")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err = s.Smart().ClientRequests(ctx, e.clock, 10)
	if err != nil || len(reqs) != 1 || reqs[0].ClientID != third {
		t.Fatalf("requests %+v %v", reqs, err)
	}
	late := reqs[0].Expires
	if _, err := e.decide(reqs[0].ID, true, "usr_bob", late); !errors.Is(err, smart.ErrApprovalStale) {
		t.Fatalf("approving an expired request: %v, want ErrApprovalStale", err)
	}
	if c := e.client(third); c.Approval != smart.ApprovalPending {
		t.Fatalf("after a stale approval the client is %q", c.Approval)
	}
	if rs, err := s.Smart().ClientRequests(ctx, late, 10); err != nil || len(rs) != 0 {
		t.Fatalf("expired requests are listed: %+v %v", rs, err)
	}
	e.mu.Lock()
	e.clock = late
	e.mu.Unlock()
	again := e.pending(e.client(third), "usr_bob")
	if _, err := smart.RequestClientApproval(ctx, sqldb.NewUnit[smart.AdminTx](s), again); err != nil {
		t.Fatalf("a new request after expiry: %v", err)
	}
	// usr_bob asked this time; usr_alice (who asked the first time, not
	// the registrar) may approve it.
	if c, err := e.decide(again.Request.ID, true, "usr_alice", e.now()); err != nil || c.Approval != smart.ApprovalApproved {
		t.Fatalf("approving the new request: %+v %v", c, err)
	}

	// Two approvers at once: exactly one decision.
	fourth, err := e.register(ok, "fourth")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err = s.Smart().ClientRequests(ctx, e.clock, 10)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("requests %+v %v", reqs, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, by := range []string{"usr_bob", "usr_carol"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.decide(reqs[0].ID, true, by, e.now())
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two approvals at once: %v, %v; want exactly one", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, smart.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
			t.Errorf("the losing approval: %v", err)
		}
	}
	if c := e.client(fourth); c.Approval != smart.ApprovalApproved {
		t.Errorf("raced client: %+v", c)
	}

	// Disabling is audited; an unknown client is not found.
	n := e.audits()
	if err := smart.DisableClient(ctx, sqldb.NewUnit[smart.AdminTx](s), first, storage.AuditRecord{Body: []byte("disable")}); err != nil {
		t.Fatal(err)
	}
	if c := e.client(first); !c.Disabled || c.Active() {
		t.Fatalf("disabled client: %+v", c)
	}
	if err := smart.DisableClient(ctx, sqldb.NewUnit[smart.AdminTx](s), "no-such-client", storage.AuditRecord{Body: []byte("x")}); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("disabling an unknown client: %v", err)
	}
	if got := e.audits() - n; got != 1 {
		t.Errorf("%d audit records after disabling, want 1", got)
	}
	if sealed == 0 {
		t.Error("Seal never ran")
	}
}

func TestClientAdminSQLite(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testClientAdmin(t, s)
}

func TestClientAdminPostgres(t *testing.T) {
	s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testClientAdmin(t, s)
}
