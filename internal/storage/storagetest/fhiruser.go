package storagetest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// testFHIRUserUnique: a FHIR user is bound to at most one enabled
// account (ADR 0018), on create, on enable and on a change of the FHIR
// user; disabled accounts do not count. The refusal is
// identity.ErrFHIRUserBound (a storage.ErrConflict), never ErrExists.
func testFHIRUserUnique(t *testing.T, s IdentityStores) {
	ctx := t.Context()
	bound := func(err error) bool {
		return errors.Is(err, identity.ErrFHIRUserBound) && errors.Is(err, storage.ErrConflict) && !errors.Is(err, identity.ErrExists)
	}
	first := newUser(t, "dr.first")
	first.FHIRUser = "Practitioner/pr-shared"
	first = mustCreate(t, s, first)

	copyU := newUser(t, "dr.copy")
	copyU.FHIRUser = "Practitioner/pr-shared"
	if _, err := s.Users.Create(ctx, copyU); !bound(err) {
		t.Fatalf("second enabled account bound to one FHIR user: %v, want ErrFHIRUserBound", err)
	}
	if _, err := s.Users.ByUsername(ctx, "dr.copy"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the refused account was stored: %v", err)
	}
	// A patient reference and a practitioner reference are different users.
	p := newUser(t, "pat.one", identity.RolePatient)
	p.DisplayName, p.FHIRUser = "", "Patient/pr-shared"
	mustCreate(t, s, p)

	// Disabled accounts do not hold the binding; enabling one back does.
	if _, err := s.Users.SetDisabled(ctx, first.ID, true); err != nil {
		t.Fatal(err)
	}
	successor := mustCreate(t, s, copyU)
	if _, err := s.Users.SetDisabled(ctx, first.ID, false); !bound(err) {
		t.Fatalf("enabling a second account of one FHIR user: %v, want ErrFHIRUserBound", err)
	}
	if u, _ := s.Users.ByID(ctx, first.ID); !u.Disabled {
		t.Fatal("the refused enable was stored")
	}
	// A taken username stays ErrExists, even with a bound FHIR user.
	dup := newUser(t, "dr.copy")
	dup.FHIRUser = "Practitioner/pr-other"
	if _, err := s.Users.Create(ctx, dup); !errors.Is(err, identity.ErrExists) {
		t.Fatalf("taken username: %v, want ErrExists", err)
	}
	// Any other write path (a change of FHIR user) meets the unique
	// index on enabled accounts' FHIR users.
	var def string
	err := s.DB.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'users_fhir_user_enabled'`).Scan(&def)
	if err != nil {
		err = s.DB.QueryRowContext(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'users_fhir_user_enabled'`).Scan(&def)
	}
	if err != nil || !strings.Contains(strings.ToUpper(def), "UNIQUE") || !strings.Contains(def, "disabled") {
		t.Fatalf("no unique index on enabled accounts' FHIR users: %q, %v", def, err)
	}
	_ = successor
}

// testFHIRUserRace: two administrators (two processes of a fleet) bind
// one FHIR user at once; exactly one wins, on create and on enable.
func testFHIRUserRace(t *testing.T, s IdentityStores) {
	ctx := t.Context()
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		u := newUser(t, "dr.race"+string(rune('a'+i)))
		u.FHIRUser = "Practitioner/pr-race"
		wg.Go(func() { _, errs[i] = s.Users.Create(ctx, u) })
	}
	wg.Wait()
	wantOne(t, "create", errs)

	// Disabled twins of one FHIR user, enabled at once.
	ids := make([]string, n)
	for i := range n {
		u := newUser(t, "dr.twin"+string(rune('a'+i)))
		u.FHIRUser, u.Disabled = "Practitioner/pr-twin", true
		ids[i] = mustCreate(t, s, u).ID
	}
	for i := range n {
		wg.Go(func() { _, errs[i] = s.Users.SetDisabled(ctx, ids[i], false) })
	}
	wg.Wait()
	wantOne(t, "enable", errs)
}

func wantOne(t *testing.T, what string, errs []error) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, identity.ErrFHIRUserBound):
		default:
			t.Errorf("%s: %v", what, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%s: %d accounts bound to one FHIR user at once, want 1", what, ok)
	}
}
