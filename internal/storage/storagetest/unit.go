package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
)

// The audited changes of the account and session domains run on the
// store's unit of work (ADR 0024): their rules live in the domain
// packages, the store implements each domain's Tx over one transaction.
// These cases check what the store owes them: everything fn wrote
// commits with its audit record or not at all.

var errAuditFailed = errors.New("audit record refused")

func auditOK(identity.User) (storage.AuditRecord, error) {
	return storage.AuditRecord{Time: time.Now(), Body: []byte("audited")}, nil
}

func testAccountApplyAtomic(t *testing.T, s IdentityStores) {
	m, _, u := manager(t, s)
	secret, _ := mustSession(t, m, u.ID)
	disable := func(audit account.AuditFn) account.Change {
		return account.Change{Op: "disable user", Change: func(x *identity.User) { x.Disabled = true },
			RevokeSessions: true, ClearMFA: true, Audit: audit}
	}
	_, err := account.Apply(t.Context(), s.Accounts, u.ID, disable(func(identity.User) (storage.AuditRecord, error) {
		return storage.AuditRecord{}, errAuditFailed
	}))
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("Apply with a failing audit record: %v, want it returned", err)
	}
	if got, err := s.Users.ByID(t.Context(), u.ID); err != nil || got.Disabled {
		t.Fatalf("after a failed audit record: disabled %v, %v; want the change rolled back", got.Disabled, err)
	}
	wantValid(t, m, secret, "after a rolled-back disable")

	got, err := account.Apply(t.Context(), s.Accounts, u.ID, disable(auditOK))
	if err != nil || !got.Disabled {
		t.Fatalf("Apply = disabled %v, %v; want disabled", got.Disabled, err)
	}
	if back, err := s.Users.ByID(t.Context(), u.ID); err != nil || !back.Disabled || !back.Updated.Equal(got.Updated) {
		t.Fatalf("stored after Apply = %+v, %v; want %+v", back, err, got)
	}
	wantInvalid(t, m, secret.Reveal(), "after disable")

	for _, id := range []string{"usr_unknown", "", "nul\x00id"} {
		if _, err := account.Apply(t.Context(), s.Accounts, id, disable(auditOK)); !errors.Is(err, identity.ErrNotFound) || !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Apply to %q: %v, want identity.ErrNotFound and storage.ErrNotFound", id, err)
		}
	}
}

func testAccountCreateAtomic(t *testing.T, s IdentityStores) {
	u := newUser(t, "ivan")
	_, err := account.Create(t.Context(), s.Accounts, u, account.New{}, func(identity.User) (storage.AuditRecord, error) {
		return storage.AuditRecord{}, errAuditFailed
	})
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("Create with a failing audit record: %v, want it returned", err)
	}
	if _, err := s.Users.ByID(t.Context(), u.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("after a failed audit record: %v, want ErrNotFound (rolled back)", err)
	}
	got, err := account.Create(t.Context(), s.Accounts, u, account.New{}, auditOK)
	if err != nil || got.Created.IsZero() || !got.Created.Equal(got.Updated) {
		t.Fatalf("Create = %+v, %v; want created and updated set and equal", got, err)
	}
	if back, err := s.Users.ByID(t.Context(), u.ID); err != nil || !back.Created.Equal(got.Created) {
		t.Fatalf("stored = %+v, %v; want %+v", back, err, got)
	}
	if _, err := account.Create(t.Context(), s.Accounts, u, account.New{}, auditOK); !errors.Is(err, identity.ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
}

func testSessionRevokeAudited(t *testing.T, s IdentityStores) {
	m, _, u := manager(t, s)
	secret, sess := mustSession(t, m, u.ID)
	keep, _ := mustSession(t, m, u.ID)
	_, err := session.RevokeAudited(t.Context(), s.Revoker, sess.ID, func(string) (storage.AuditRecord, error) {
		return storage.AuditRecord{}, errAuditFailed
	})
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("RevokeAudited with a failing audit record: %v, want it returned", err)
	}
	wantValid(t, m, secret, "after a rolled-back revocation")
	var audited string
	owner, err := session.RevokeAudited(t.Context(), s.Revoker, sess.ID, func(uid string) (storage.AuditRecord, error) {
		audited = uid
		return storage.AuditRecord{Time: time.Now(), Body: []byte("revoked")}, nil
	})
	if err != nil || owner != u.ID || audited != u.ID {
		t.Fatalf("RevokeAudited = %q, %v (audit built for %q); want %q", owner, err, audited, u.ID)
	}
	wantInvalid(t, m, secret.Reveal(), "revoked")
	wantValid(t, m, keep, "the other session")
	for _, id := range []string{sess.ID, "ses_unknown", ""} {
		if _, err := session.RevokeAudited(t.Context(), s.Revoker, id, func(string) (storage.AuditRecord, error) {
			return storage.AuditRecord{Time: time.Now(), Body: []byte("x")}, nil
		}); !errors.Is(err, session.ErrNotFound) || !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RevokeAudited(%q): %v, want session.ErrNotFound and storage.ErrNotFound", id, err)
		}
	}
}
