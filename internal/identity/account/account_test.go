package account_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
)

// fakeTx is a hand-written account.Tx over maps: the rules are tested
// without a database (the store's side is storagetest's). Update runs
// fn on a copy and keeps it only if fn returns nil, as a transaction.
type fakeTx struct {
	now      time.Time
	users    map[string]identity.User
	requests map[string]identity.Request
	revoked  []string // user ids whose sessions were revoked
	cleared  []string // user ids whose second factors were cleared
	alerts   []authz.Alert
	audits   int
}

func (f *fakeTx) clone() *fakeTx {
	c := *f
	c.users = make(map[string]identity.User, len(f.users))
	for k, v := range f.users {
		c.users[k] = v
	}
	c.requests = make(map[string]identity.Request, len(f.requests))
	for k, v := range f.requests {
		c.requests[k] = v
	}
	c.revoked, c.cleared, c.alerts = slices.Clone(f.revoked), slices.Clone(f.cleared), slices.Clone(f.alerts)
	return &c
}

type fakeStore struct{ state *fakeTx }

func (s *fakeStore) Update(_ context.Context, fn func(account.Tx) error) error {
	t := s.state.clone()
	if err := fn(t); err != nil {
		return err
	}
	s.state = t
	return nil
}

func notFound(op string) error {
	return errors.Join(identity.ErrNotFound, storage.ErrNotFound, errors.New(op))
}

func (f *fakeTx) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	f.audits += len(recs)
	return nil
}
func (f *fakeTx) Now() time.Time { return f.now }
func (f *fakeTx) LockUser(_ context.Context, op, id string) (identity.User, error) {
	u, ok := f.users[id]
	if !ok {
		return identity.User{}, notFound(op)
	}
	return u, nil
}
func (f *fakeTx) InsertUser(_ context.Context, u identity.User) error {
	f.users[u.ID] = u
	return nil
}
func (f *fakeTx) InsertLinkedUser(ctx context.Context, u identity.User) error {
	return f.InsertUser(ctx, u)
}
func (f *fakeTx) LinkSSO(context.Context, string, string, string, time.Time) error { return nil }
func (f *fakeTx) UpdateUser(_ context.Context, _ string, _, cur identity.User) error {
	f.users[cur.ID] = cur
	return nil
}
func (f *fakeTx) PutEnrolment(context.Context, string, account.Enrolment, time.Time) error {
	return nil
}
func (f *fakeTx) EnrolmentOwner(context.Context, []byte, string) (string, error) {
	return "", notFound("enrolment secret")
}
func (f *fakeTx) DeleteEnrolment(_ context.Context, op, _ string, _ []byte, _ time.Time) error {
	return notFound(op)
}
func (f *fakeTx) ClearSecondFactors(_ context.Context, _, id string) error {
	f.cleared = append(f.cleared, id)
	return nil
}
func (f *fakeTx) RevokeUserSessions(_ context.Context, _, id string) error {
	f.revoked = append(f.revoked, id)
	return nil
}
func (f *fakeTx) DeleteExpiredRoleRequests(context.Context, string, string, time.Time) error {
	return nil
}
func (f *fakeTx) InsertRoleRequest(_ context.Context, _ string, r identity.Request) error {
	f.requests[r.ID] = r
	return nil
}
func (f *fakeTx) LockRoleRequest(_ context.Context, op, id string) (identity.Request, error) {
	r, ok := f.requests[id]
	if !ok {
		return identity.Request{}, notFound(op)
	}
	return r, nil
}
func (f *fakeTx) DeleteRoleRequest(_ context.Context, _, id string) error {
	delete(f.requests, id)
	return nil
}
func (f *fakeTx) RaiseAlert(_ context.Context, a authz.Alert) error {
	f.alerts = append(f.alerts, a)
	return nil
}

var _ account.Tx = (*fakeTx)(nil)

func auditOK(identity.User) (storage.AuditRecord, error) {
	return storage.AuditRecord{Body: []byte("x")}, nil
}

func requestAuditOK(identity.Request, identity.User) (storage.AuditRecord, error) {
	return storage.AuditRecord{Body: []byte("x")}, nil
}

func newStore(t *testing.T) (*fakeStore, time.Time) {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := identity.User{ID: "usr_bob", Username: "bob", DisplayName: "Bob", Roles: []identity.Role{identity.RoleNurse}}
	return &fakeStore{state: &fakeTx{now: now, users: map[string]identity.User{u.ID: u}, requests: map[string]identity.Request{}}}, now
}

// The rules of Apply: the change, its revocations, its audit record;
// nothing of it without the audit record.
func TestApplyRevokesWithTheChange(t *testing.T) {
	st, _ := newStore(t)
	failing := func(identity.User) (storage.AuditRecord, error) { return storage.AuditRecord{}, errors.New("no audit") }
	disable := account.Change{Op: "disable user", Change: func(u *identity.User) { u.Disabled = true }, RevokeSessions: true, ClearMFA: true}
	c := disable
	c.Audit = failing
	if _, err := account.Apply(t.Context(), st, "usr_bob", c); err == nil {
		t.Fatal("Apply with a failing audit record succeeded")
	}
	if st.state.users["usr_bob"].Disabled || len(st.state.revoked) != 0 {
		t.Fatal("a change without its audit record was kept")
	}
	c.Audit = auditOK
	u, err := account.Apply(t.Context(), st, "usr_bob", c)
	if err != nil || !u.Disabled {
		t.Fatalf("Apply = %+v, %v", u, err)
	}
	if !slices.Equal(st.state.revoked, []string{"usr_bob"}) || !slices.Equal(st.state.cleared, []string{"usr_bob"}) || st.state.audits != 1 {
		t.Errorf("revoked %v, cleared %v, audits %d; want the user's sessions and factors, one record", st.state.revoked, st.state.cleared, st.state.audits)
	}
	if _, err := account.Apply(t.Context(), st, "usr_bob", account.Change{Op: "x"}); err == nil {
		t.Error("Apply without an audit builder succeeded")
	}

	// A role change that is only requested leaves the sessions alone.
	st, _ = newStore(t)
	same := account.Change{Op: "set roles", RevokeIfRolesChanged: true, Change: func(*identity.User) {}, Audit: auditOK}
	if _, err := account.Apply(t.Context(), st, "usr_bob", same); err != nil || len(st.state.revoked) != 0 {
		t.Errorf("unchanged roles: %v, revoked %v; want none revoked", err, st.state.revoked)
	}
}

// The two-person rule: nobody approves their own request or one for
// their own account; an expired request or one whose account changed
// since is stale; an approval revokes the account's sessions.
func TestDecide(t *testing.T) {
	st, now := newStore(t)
	p := account.Pending{
		Request: identity.Request{ID: "rqs_1", UserID: "usr_bob", Roles: []identity.Role{identity.RolePhysician},
			RequestedBy: "usr_alice", Created: now, Expires: now.Add(identity.RequestTTL)},
		Alert: authz.Alert{ID: "alr_1", Kind: "role-grant-requested", Priority: "high", UserID: "usr_bob"},
		Audit: requestAuditOK,
	}
	if _, err := account.RequestRoles(t.Context(), st, p); err != nil {
		t.Fatal(err)
	}
	if got := st.state.requests["rqs_1"].BaseRoles; !slices.Equal(got, []identity.Role{identity.RoleNurse}) {
		t.Fatalf("BaseRoles = %v, want the account's roles", got)
	}
	for _, by := range []string{"usr_alice", "usr_bob", ""} {
		_, _, err := account.Decide(t.Context(), st, "rqs_1", account.Decision{Approve: true, By: by, Now: now, Audit: requestAuditOK})
		if !errors.Is(err, identity.ErrSelf) {
			t.Errorf("approval by %q: %v, want ErrSelf", by, err)
		}
	}
	_, _, err := account.Decide(t.Context(), st, "rqs_1", account.Decision{Approve: true, By: "usr_carol", Now: now.Add(identity.RequestTTL), Audit: requestAuditOK})
	if !errors.Is(err, identity.ErrRequestStale) || !errors.Is(err, storage.ErrConflict) {
		t.Errorf("approval of an expired request: %v, want ErrRequestStale over storage.ErrConflict", err)
	}
	_, u, err := account.Decide(t.Context(), st, "rqs_1", account.Decision{Approve: true, By: "usr_carol", Now: now,
		Alert: authz.Alert{ID: "alr_2", Kind: "role-grant-approved", Priority: "high"}, Audit: requestAuditOK})
	if err != nil || !slices.Equal(u.Roles, []identity.Role{identity.RolePhysician}) {
		t.Fatalf("approval = %v, %v; want the requested roles", u.Roles, err)
	}
	if !slices.Equal(st.state.revoked, []string{"usr_bob"}) || len(st.state.requests) != 0 {
		t.Errorf("after approval: revoked %v, requests %v; want the account's sessions revoked and the request gone", st.state.revoked, st.state.requests)
	}
	if a := st.state.alerts[len(st.state.alerts)-1]; a.UserID != "usr_bob" || a.Ref != "Request/rqs_1" {
		t.Errorf("approval alert = %+v, want it about the account and the request", a)
	}
	if _, _, err := account.Decide(t.Context(), st, "rqs_1", account.Decision{By: "usr_carol", Audit: requestAuditOK}); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("a second decision: %v, want ErrNotFound", err)
	}
}
