package smarttest_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// testClientAdmin: registration commits the client with its audit
// record or neither; the list is newest first; disabling is audited and
// an unknown client is smart.ErrNotFound.
func testClientAdmin(t *testing.T, s *sqldb.Store) {
	audits := func() int {
		n := 0
		if err := s.ScanAudit(t.Context(), 0, func(int64, storage.AuditRecord) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := 0
	opts := smart.RegistryOptions{Now: func() time.Time { clock = clock.Add(time.Second); return clock },
		NewID: func() string { n++; return "client-" + string(rune('a'+n)) }}
	sealed := 0
	ok := sqldb.AuditedClients{Smart: s.Smart(), Seal: func(c smart.Client) (storage.AuditRecord, error) {
		sealed++
		return storage.AuditRecord{Body: []byte("register " + c.ID)}, nil
	}}
	failing := sqldb.AuditedClients{Smart: s.Smart(), Seal: func(smart.Client) (storage.AuditRecord, error) {
		return storage.AuditRecord{}, errors.New("sealing failed")
	}}
	sc, err := scope.ParseSet("openid fhirUser launch/patient patient/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	reg := func(st smart.ClientStore, name string) (string, error) {
		r, err := smart.NewRegistry(st, opts)
		if err != nil {
			t.Fatal(err)
		}
		return r.RegisterApp(t.Context(), smart.AppRegistration{Name: name, Public: true, RedirectURIs: []string{"https://app.example/cb"}, Scopes: sc})
	}
	before := audits()
	first, err := reg(ok, "first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg(failing, "unaudited"); err == nil {
		t.Fatal("registration without its audit record succeeded")
	}
	second, err := reg(ok, "second")
	if err != nil {
		t.Fatal(err)
	}
	if got := audits() - before; got != 2 || sealed != 2 {
		t.Errorf("%d audit records (%d sealed), want 2", got, sealed)
	}
	cs, err := s.Smart().Clients(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != second || cs[1].ID != first || cs[0].Scopes.String() != sc.String() || cs[0].RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("clients %+v", cs)
	}
	if err := s.Smart().DisableClientAudited(t.Context(), first, storage.AuditRecord{Body: []byte("disable")}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Smart().Client(t.Context(), first)
	if err != nil || !c.Disabled {
		t.Fatalf("disabled client: %+v %v", c, err)
	}
	if err := s.Smart().DisableClientAudited(t.Context(), "no-such-client", storage.AuditRecord{Body: []byte("x")}); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("disabling an unknown client: %v", err)
	}
	if got := audits() - before; got != 3 {
		t.Errorf("%d audit records after disabling, want 3", got)
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
