package account_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
)

// The administration service's rules over the fakes of account_test.go:
// no self-change and the two-person rule, each refusal audited. The
// same service over the SQL store is tested through the composition
// root (internal/app, internal/httpapi).

// plainSealer seals nothing: the audit records stay readable.
type plainSealer struct{}

func (plainSealer) SealAudit(_ string, b []byte) ([]byte, error) { return b, nil }
func (plainSealer) OpenAudit(_ string, b []byte) ([]byte, error) { return b, nil }

// recorder is an audit.Appender that keeps the events it is given.
type recorder struct {
	log    *audit.Log
	events []audit.Event
}

func (r *recorder) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	for _, rec := range recs {
		b, err := r.log.Open(rec)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		r.events = append(r.events, ev)
	}
	return nil
}

// fakeUsers reads the fake store's state, as sqldb.Users reads the
// database.
type fakeUsers struct{ st *fakeStore }

func (f fakeUsers) ByID(_ context.Context, id string) (identity.User, error) {
	u, ok := f.st.state.users[id]
	if !ok {
		return identity.User{}, notFound("user")
	}
	return u, nil
}
func (f fakeUsers) ByUsername(_ context.Context, name string) (identity.User, error) {
	for _, u := range f.st.state.users {
		if u.Username == name {
			return u, nil
		}
	}
	return identity.User{}, notFound("user")
}
func (f fakeUsers) List(context.Context, string, int) ([]identity.User, error) { return nil, nil }
func (f fakeUsers) EnrolmentUser(context.Context, []byte, string, time.Time) (string, error) {
	return "", notFound("enrolment secret")
}
func (f fakeUsers) PendingRequests(_ context.Context, now time.Time, _ int) ([]identity.Request, error) {
	var out []identity.Request
	for _, r := range f.st.state.requests {
		if !r.Expired(now) {
			out = append(out, r)
		}
	}
	return out, nil
}
func (f fakeUsers) RequestFor(_ context.Context, userID string, now time.Time) (identity.Request, error) {
	for _, r := range f.st.state.requests {
		if r.UserID == userID && !r.Expired(now) {
			return r, nil
		}
	}
	return identity.Request{}, notFound("request")
}

// keyedHash is an authn.Hasher for tests.
type keyedHash struct{}

func (keyedHash) LookupHash(kind, secret string) []byte { return []byte(kind + ":" + secret) }

func newService(t *testing.T) (*account.Service, *fakeStore, *recorder, time.Time) {
	t.Helper()
	st, now := newStore(t)
	log := audit.NewLog(plainSealer{})
	rec := &recorder{log: log}
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	x := account.NewService(account.Deps{Users: fakeUsers{st}, Sessions: session.Store(nil), Revoke: session.Updater(nil),
		Appender: rec, Store: st, Log: log, Hasher: h, Lookup: keyedHash{}, Now: func() time.Time { return now }})
	return x, st, rec, now
}

// Nobody changes their own account: each refusal is identity.ErrSelf,
// audited as denied under the separation-of-duties policy, and changes
// nothing.
func TestServiceRefusesSelfChange(t *testing.T) {
	x, st, rec, _ := newService(t)
	bob := audit.Agent{User: "usr_bob", Session: "ses_1"}
	ctx := t.Context()
	steps := map[audit.Action]func() error{
		audit.ActionUserDisable: func() error { _, err := x.SetDisabled(ctx, bob, "usr_bob", true); return err },
		audit.ActionUserSetRoles: func() error {
			_, err := x.SetRoles(ctx, bob, "usr_bob", []identity.Role{identity.RoleSecurityAdmin})
			return err
		},
		audit.ActionUserResetMFA: func() error { _, err := x.ResetMFA(ctx, bob, "usr_bob"); return err },
	}
	for act, step := range steps {
		before := len(rec.events)
		if err := step(); !errors.Is(err, identity.ErrSelf) {
			t.Errorf("%s of one's own account: %v, want ErrSelf", act, err)
		}
		if len(rec.events) != before+1 {
			t.Fatalf("%s: %d refusals recorded, want 1", act, len(rec.events)-before)
		}
		ev := rec.events[len(rec.events)-1]
		if ev.Action != act || ev.Outcome != audit.OutcomeDenied || ev.Agent != bob ||
			!slices.Equal(ev.Entities, []string{"User/usr_bob"}) || !slices.Equal(ev.Policies, []string{"separation-of-duties"}) {
			t.Errorf("%s refusal recorded as %+v", act, ev)
		}
	}
	if u := st.state.users["usr_bob"]; u.Disabled || !slices.Equal(u.Roles, []identity.Role{identity.RoleNurse}) ||
		len(st.state.revoked) != 0 || len(st.state.requests) != 0 || st.state.audits != 0 {
		t.Errorf("a refused change was kept: %+v, revoked %v, requests %v", u, st.state.revoked, st.state.requests)
	}
}

// The two-person rule: a role that needs approval becomes a request
// with an alert; only another person's session approves it, and each
// refusal is audited.
func TestServiceTwoPersonRule(t *testing.T) {
	x, st, rec, _ := newService(t)
	ctx := t.Context()
	alice := audit.Agent{User: "usr_alice", Session: "ses_a"}
	u, err := x.SetRoles(ctx, alice, "usr_bob", []identity.Role{identity.RoleNurse, identity.RolePhysician})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Roles, []identity.Role{identity.RoleNurse}) {
		t.Errorf("roles before approval = %v, want only the approval-free ones", u.Roles)
	}
	r, ok, err := x.PendingRequest(ctx, "usr_bob")
	if err != nil || !ok || r.RequestedBy != "usr_alice" || !strings.HasPrefix(r.ID, "rqs_") {
		t.Fatalf("PendingRequest = %+v, %v, %v", r, ok, err)
	}
	if a := st.state.alerts[len(st.state.alerts)-1]; a.Kind != "role-grant-requested" || a.Ref != "Request/"+r.ID {
		t.Errorf("request alert = %+v", a)
	}

	refusals := []struct {
		actor audit.Agent
		want  error
	}{
		{audit.Agent{User: "usr_carol"}, identity.ErrApprover},             // an API token or the CLI, not a session
		{audit.Agent{Session: "ses_x"}, identity.ErrApprover},              // no account
		{alice, identity.ErrSelf},                                          // the requester
		{audit.Agent{User: "usr_bob", Session: "ses_b"}, identity.ErrSelf}, // the account concerned
	}
	for _, tt := range refusals {
		before := len(rec.events)
		if _, err := x.Approve(ctx, tt.actor, r.ID); !errors.Is(err, tt.want) {
			t.Errorf("Approve by %+v: %v, want %v", tt.actor, err, tt.want)
		}
		if len(rec.events) != before+1 {
			t.Fatalf("Approve by %+v: %d refusals recorded, want 1", tt.actor, len(rec.events)-before)
		}
		if ev := rec.events[len(rec.events)-1]; ev.Action != audit.ActionUserGrantApprove || ev.Outcome != audit.OutcomeDenied ||
			!slices.Equal(ev.Entities, []string{"Request/" + r.ID}) || !slices.Equal(ev.Policies, []string{"separation-of-duties"}) {
			t.Errorf("refusal recorded as %+v", ev)
		}
	}
	carol := audit.Agent{User: "usr_carol", Session: "ses_c"}
	u, err = x.Approve(ctx, carol, r.ID)
	if err != nil || !slices.Equal(u.Roles, []identity.Role{identity.RoleNurse, identity.RolePhysician}) {
		t.Fatalf("Approve by a second administrator = %v, %v", u.Roles, err)
	}
	if a := st.state.alerts[len(st.state.alerts)-1]; a.Kind != "role-grant-approved" || a.UserID != "usr_bob" {
		t.Errorf("approval alert = %+v", a)
	}
	if _, ok, err := x.PendingRequest(ctx, "usr_bob"); ok || err != nil {
		t.Errorf("a request is still pending after approval: %v %v", ok, err)
	}
}

// Add gives the approval-free roles at once and requests the others;
// AddBreakGlass gives them all, with an alert.
func TestServiceAdd(t *testing.T) {
	x, st, _, _ := newService(t)
	ctx := t.Context()
	admin := audit.Agent{User: "usr_alice", Session: "ses_a"}
	u, secret, err := x.Add(ctx, admin, identity.User{Username: "dr.who", Roles: []identity.Role{identity.RolePhysician}})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Roles) != 0 || !strings.HasPrefix(secret.Reveal(), account.EnrolmentPrefix) {
		t.Errorf("Add = %v, secret %q; want no role yet and an enrolment secret", u.Roles, secret.Reveal()[:4])
	}
	if _, ok, _ := x.PendingRequest(ctx, u.ID); !ok {
		t.Error("no pending request for the role that needs approval")
	}
	u, _, err = x.AddBreakGlass(ctx, audit.Agent{Client: "cli"}, identity.User{Username: "dr.no", Roles: []identity.Role{identity.RolePhysician}})
	if err != nil || !slices.Equal(u.Roles, []identity.Role{identity.RolePhysician}) {
		t.Fatalf("AddBreakGlass = %v, %v", u.Roles, err)
	}
	if a := st.state.alerts[len(st.state.alerts)-1]; a.Kind != "role-grant-break-glass" || a.UserID != u.ID {
		t.Errorf("break-glass alert = %+v", a)
	}
	if _, _, err := x.Add(ctx, admin, identity.User{Username: "nobody"}); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("Add without a role: %v, want ErrInvalid", err)
	}
}

// fakeTokens is the unit of work of token creation over memory.
type fakeTokens struct {
	tokens []storage.APIToken
	alerts []authz.Alert
	recs   []storage.AuditRecord
}

func (f *fakeTokens) Update(ctx context.Context, fn func(account.TokenTx) error) error {
	g := &fakeTokens{}
	if err := fn(g); err != nil {
		return err
	}
	f.tokens, f.alerts, f.recs = append(f.tokens, g.tokens...), append(f.alerts, g.alerts...), append(f.recs, g.recs...)
	return nil
}
func (f *fakeTokens) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	f.recs = append(f.recs, recs...)
	return nil
}
func (f *fakeTokens) RaiseAlert(_ context.Context, a authz.Alert) error {
	f.alerts = append(f.alerts, a)
	return nil
}
func (f *fakeTokens) PutToken(_ context.Context, t storage.APIToken) error {
	f.tokens = append(f.tokens, t)
	return nil
}

// An offline token whose roles need approval is refused without break
// glass, and raises an alert with it.
func TestTokensCreateOffline(t *testing.T) {
	st := &fakeTokens{}
	tk := account.NewTokens(st, keyedHash{}, audit.NewLog(plainSealer{}))
	ctx := t.Context()
	cli := audit.Agent{Client: "cli"}
	if _, err := tk.CreateOffline(ctx, cli, "feed", []string{"physician"}, false); !errors.Is(err, account.ErrTokenBreakGlass) {
		t.Errorf("a PHI token without break glass: %v, want ErrTokenBreakGlass", err)
	}
	if _, err := tk.CreateOffline(ctx, cli, "feed", []string{"no-such-role"}, true); err == nil {
		t.Error("an unknown role was accepted")
	}
	if len(st.tokens) != 0 {
		t.Fatalf("refused tokens were stored: %v", st.tokens)
	}
	if _, err := tk.CreateOffline(ctx, cli, "terminology", []string{"researcher"}, false); err != nil || len(st.alerts) != 0 {
		t.Errorf("a token that needs no approval: %v, alerts %v", err, st.alerts)
	}
	secret, err := tk.CreateOffline(ctx, cli, "feed", []string{"physician"}, true)
	if err != nil || secret.Reveal() == "" {
		t.Fatalf("break glass: %v", err)
	}
	if len(st.tokens) != 2 || len(st.recs) != 2 || len(st.alerts) != 1 || st.alerts[0].Kind != "token-break-glass" || st.alerts[0].UserID != "cli" {
		t.Errorf("stored %d tokens, %d records, alerts %+v", len(st.tokens), len(st.recs), st.alerts)
	}
	if _, err := tk.Create(ctx, "ops", []string{"system"}); err != nil || len(st.tokens) != 3 {
		t.Errorf("Create: %v, %d tokens", err, len(st.tokens))
	}
}
