package app_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

var admin = audit.Agent{User: "usr_admin", Role: "security-admin", Address: "192.0.2.1"}

func accounts(t *testing.T) (*apitest.Server, *account.Service) {
	t.Helper()
	s := apitest.Start(t, "sqlite")
	acc, err := s.App.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	return s, acc
}

func events(t *testing.T, a *app.App) []audit.Event {
	t.Helper()
	evs, err := a.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAccountChangesAudited checks that each change commits one audit
// event naming the acting principal and "User/<id>", and that the
// changes that must end sessions do.
func TestAccountChangesAudited(t *testing.T) {
	s, acc := accounts(t)
	ctx := t.Context()
	u, secret, err := acc.AddBreakGlass(ctx, admin, identity.User{Username: "nurse.jo", Roles: []identity.Role{identity.RoleNurse}})
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "" || secret.Reveal() == "" {
		t.Fatalf("new user has a password or no secret: %+v", u)
	}
	m, err := session.NewManager(s.App.Store.(*sqldb.Store).Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		action  audit.Action
		revokes bool
		do      func() (identity.User, error)
	}{
		{audit.ActionUserDisable, true, func() (identity.User, error) { return acc.SetDisabled(ctx, admin, u.ID, true) }},
		{audit.ActionUserEnable, false, func() (identity.User, error) { return acc.SetDisabled(ctx, admin, u.ID, false) }},
		{audit.ActionUserSetRoles, true, func() (identity.User, error) {
			return acc.SetRoles(ctx, admin, u.ID, []identity.Role{identity.RoleResearcher}) // a removal: at once
		}},
		{audit.ActionUserResetMFA, true, func() (identity.User, error) { return acc.ResetMFA(ctx, admin, u.ID) }},
	}
	for _, st := range steps {
		t.Run(string(st.action), func(t *testing.T) {
			sec, _, err := m.Create(ctx, u.ID, true, "")
			if err != nil {
				t.Fatal(err)
			}
			before := len(events(t, s.App))
			if _, err := st.do(); err != nil {
				t.Fatal(err)
			}
			evs := events(t, s.App)
			if len(evs) != before+1 {
				t.Fatalf("%d audit events appended, want 1", len(evs)-before)
			}
			ev := evs[len(evs)-1]
			if ev.Action != st.action || ev.Outcome != audit.OutcomeSuccess || ev.Agent != admin || !slices.Equal(ev.Entities, []string{"User/" + u.ID}) {
				t.Errorf("audit event %+v", ev)
			}
			_, err = m.Validate(ctx, sec.Reveal())
			if st.revokes != errors.Is(err, session.ErrInvalidSession) {
				t.Errorf("session after %s: %v (revocation expected: %v)", st.action, err, st.revokes)
			}
		})
	}
	found := false
	for _, ev := range events(t, s.App) {
		found = found || (ev.Action == audit.ActionUserCreate && ev.Agent == admin && slices.Equal(ev.Entities, []string{"User/" + u.ID}))
	}
	if !found {
		t.Error("no user-create audit event")
	}
}

func TestResetMFAClearsFactors(t *testing.T) {
	s, acc := accounts(t)
	ctx := t.Context()
	u, _, err := acc.Add(ctx, admin, identity.User{Username: "dr.who", Roles: []identity.Role{identity.RolePhysician}})
	if err != nil {
		t.Fatal(err)
	}
	logins := s.App.Store.(*sqldb.Store).Logins()
	rec, err := s.App.Log.Seal(audit.Event{Time: time.Now(), Action: "test", Outcome: audit.OutcomeSuccess})
	if err != nil {
		t.Fatal(err)
	}
	if err := login.PutTOTP(ctx, sqldb.NewUnit[login.Tx](s.App.Store.(*sqldb.Store)), u.ID, []byte("sealed"), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := logins.TOTP(ctx, u.ID); err != nil {
		t.Fatalf("TOTP before reset: %v", err)
	}
	if _, err := acc.ResetMFA(ctx, admin, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := logins.TOTP(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TOTP after reset: %v, want ErrNotFound", err)
	}
}

func TestEnrolmentSecretExpires(t *testing.T) {
	_, acc := accounts(t)
	ctx := t.Context()
	t0 := time.Now()
	at := func(d time.Duration) *account.Service { return acc.WithClock(func() time.Time { return t0.Add(d) }) }
	const pw = "correct horse battery staple"

	_, secret, err := at(0).Add(ctx, admin, identity.User{Username: "late.user", Roles: []identity.Role{identity.RoleBilling}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at(account.EnrolmentLifetime).Enrol(ctx, admin, "late.user", secret.Reveal(), pw); !errors.Is(err, account.ErrEnrolmentRefused) {
		t.Errorf("Enrol at expiry: %v, want ErrEnrolmentRefused", err)
	}

	_, secret, err = at(0).Add(ctx, admin, identity.User{Username: "prompt.user", Roles: []identity.Role{identity.RoleBilling}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at(time.Hour).Enrol(ctx, admin, "prompt.user", secret.Reveal(), "prompt.user is me"); !errors.Is(err, password.ErrContext) {
		t.Errorf("Enrol with the username in the password: %v, want ErrContext", err)
	}
	u, err := at(time.Hour).Enrol(ctx, admin, "prompt.user", secret.Reveal(), pw)
	if err != nil {
		t.Fatalf("Enrol within the lifetime: %v", err)
	}
	ok, _, err := password.Verify(pw, u.PasswordHash)
	if err != nil || !ok {
		t.Errorf("stored hash does not verify the password: %v %v", ok, err)
	}
	if _, err := at(time.Hour).Enrol(ctx, admin, "prompt.user", secret.Reveal(), pw); !errors.Is(err, account.ErrEnrolmentRefused) {
		t.Errorf("second Enrol: %v, want ErrEnrolmentRefused", err)
	}
}

// TestAdminSessions: an admin lists a user's sessions, ends one by id and
// then all of them; each revocation commits one audit event naming the
// admin, and an unknown or already revoked session is session.ErrNotFound.
func TestAdminSessions(t *testing.T) {
	s, acc := accounts(t)
	ctx := t.Context()
	u, _, err := acc.Add(ctx, admin, identity.User{Username: "nurse.sam", Roles: []identity.Role{identity.RoleNurse}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(s.App.Store.(*sqldb.Store).Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec1, x1, err := m.Create(ctx, u.ID, true, "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	sec2, _, err := m.Create(ctx, u.ID, true, "")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := acc.Sessions(ctx, u.ID)
	if err != nil || len(ss) != 2 {
		t.Fatalf("Sessions: %d sessions, %v; want 2", len(ss), err)
	}
	if _, err := acc.Sessions(ctx, "usr_nobody"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("Sessions of an unknown user: %v, want identity.ErrNotFound", err)
	}

	before := len(events(t, s.App))
	if err := acc.RevokeSession(ctx, admin, x1.ID); err != nil {
		t.Fatal(err)
	}
	evs := events(t, s.App)
	if len(evs) != before+1 {
		t.Fatalf("%d audit events appended, want 1", len(evs)-before)
	}
	ev := evs[len(evs)-1]
	if ev.Action != audit.ActionSessionRevoke || ev.Outcome != audit.OutcomeSuccess || ev.Agent != admin ||
		!slices.Equal(ev.Entities, []string{"Session/" + x1.ID, "User/" + u.ID}) {
		t.Errorf("audit event %+v", ev)
	}
	if _, err := m.Validate(ctx, sec1.Reveal()); !errors.Is(err, session.ErrInvalidSession) {
		t.Errorf("revoked session: %v, want ErrInvalidSession", err)
	}
	if _, err := m.Validate(ctx, sec2.Reveal()); err != nil {
		t.Errorf("the other session was revoked too: %v", err)
	}
	for _, id := range []string{x1.ID, "ses_00000000000000000000000000000000", "x"} {
		if err := acc.RevokeSession(ctx, admin, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("RevokeSession(%q): %v, want session.ErrNotFound", id, err)
		}
	}
	if n := len(events(t, s.App)); n != before+1 {
		t.Errorf("refused revocations appended %d audit events", n-before-1)
	}

	if err := acc.RevokeSessions(ctx, admin, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, sec2.Reveal()); !errors.Is(err, session.ErrInvalidSession) {
		t.Errorf("session after RevokeSessions: %v, want ErrInvalidSession", err)
	}
	ev = events(t, s.App)[before+1]
	if ev.Action != audit.ActionSessionRevoke || ev.Agent != admin || !slices.Equal(ev.Entities, []string{"User/" + u.ID}) {
		t.Errorf("RevokeSessions audit event %+v", ev)
	}
	if ss, err := acc.Sessions(ctx, u.ID); err != nil || len(ss) != 0 {
		t.Errorf("Sessions after RevokeSessions: %d, %v; want none", len(ss), err)
	}
	if err := acc.RevokeSessions(ctx, admin, "usr_nobody"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("RevokeSessions of an unknown user: %v, want identity.ErrNotFound", err)
	}
}
