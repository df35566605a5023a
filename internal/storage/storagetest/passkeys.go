package storagetest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/storage"
)

// passkeyCases are the passkey store cases of RunLogin; they run when
// the login store is also a login.PasskeyStore.
var passkeyCases = []struct {
	name string
	fn   func(t *testing.T, s LoginStores, p login.PasskeyStore)
}{
	{"PasskeyEnrolAndAdd", testPasskeyEnrolAndAdd},
	{"PasskeyCeremonySingleUse", testPasskeyCeremonySingleUse},
	{"PasskeySignCountCAS", testPasskeySignCount},
	{"PasskeyRenameDelete", testPasskeyRenameDelete},
}

func newPasskey(userID, id string, credID byte) passkey.Credential {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return passkey.Credential{ID: id, UserID: userID, CredentialID: bytes.Repeat([]byte{credID}, 32),
		PublicKey: []byte{0xa5, 1, 2, 3, 0x26}, SignCount: 7, AAGUID: bytes.Repeat([]byte{9}, 16),
		Transports: []string{"internal", "hybrid"}, BackupEligible: true, BackupState: true, UserVerified: true,
		Name: "Laptop " + id, Created: now, LastUsed: now}
}

func use(n byte) *login.CeremonyUse {
	return &login.CeremonyUse{Key: bytes.Repeat([]byte{n}, 32), Expires: time.Now().Add(time.Minute)}
}

// enrolPasskey enrols u with passkey c (session n).
func enrolPasskey(t *testing.T, s LoginStores, c passkey.Credential, n byte) {
	t.Helper()
	sess, th := commitSession(c.UserID, n)
	err := login.ApplyCommit(t.Context(), s.Tx, login.Commit{UserID: c.UserID, Enrol: true, NewPasskey: &c, Ceremony: use(n), Session: sess, TokenHash: th})
	if err != nil {
		t.Fatal(err)
	}
}

func testPasskeyEnrolAndAdd(t *testing.T, s LoginStores, p login.PasskeyStore) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.user"))
	other := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.other"))
	// An unconfirmed TOTP secret is dropped when a passkey is enrolled.
	if err := login.PutTOTP(ctx, s.Tx, u.ID, []byte("sealed"), rec("totp")); err != nil {
		t.Fatal(err)
	}
	// Adding outside enrolment needs an enrolled user.
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-0", 9), *use(9), rec("x")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("AddPasskey before enrolment: %v, want ErrConflict", err)
	}
	first := newPasskey(u.ID, "pk-1", 1)
	enrolPasskey(t, s, first, 1)
	if got, _ := s.Users.ByID(ctx, u.ID); !got.MFAEnrolled {
		t.Fatal("passkey enrolment did not mark the user enrolled")
	}
	if _, err := s.Logins.TOTP(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unconfirmed TOTP after passkey enrolment: %v, want ErrNotFound", err)
	}
	got, err := p.Passkeys(ctx, u.ID)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], first) {
		t.Fatalf("Passkeys = %+v, %v;\nwant %+v", got, err, first)
	}
	n := auditCount(t, s.Store)
	second := newPasskey(u.ID, "pk-2", 2)
	second.Transports, second.AAGUID, second.BackupEligible, second.BackupState = nil, []byte{}, false, false
	second.Created = second.Created.Add(time.Second)
	if err := login.AddPasskey(ctx, s.Tx, second, *use(2), rec("add")); err != nil {
		t.Fatal(err)
	}
	if auditCount(t, s.Store) != n+1 {
		t.Fatal("AddPasskey not audited")
	}
	got, _ = p.Passkeys(ctx, u.ID)
	if len(got) != 2 || got[1].ID != "pk-2" || got[1].Transports != nil || got[1].BackupEligible {
		t.Fatalf("Passkeys after add = %+v", got)
	}
	// A credential id is unique across users; the failed add writes nothing.
	dup := newPasskey(other.ID, "pk-3", 1)
	sess, th := commitSession(other.ID, 3)
	err = login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: other.ID, Enrol: true, NewPasskey: &dup, Ceremony: use(3), Session: sess, TokenHash: th})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("another user's credential id: %v, want ErrConflict", err)
	}
	wantSession(t, s, th, false)
	if got, _ := s.Users.ByID(ctx, other.ID); got.MFAEnrolled {
		t.Fatal("failed commit enrolled the user")
	}
	if list, _ := p.Passkeys(ctx, other.ID); len(list) != 0 {
		t.Fatalf("other user's passkeys: %+v", list)
	}
	// At most passkey.MaxCredentials.
	for i := 2; i < passkey.MaxCredentials; i++ {
		if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-m"+string(rune('a'+i)), byte(100+i)), *use(byte(100 + i)), rec("add")); err != nil {
			t.Fatal(err)
		}
	}
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-over", 250), *use(250), rec("add")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("passkey beyond the maximum: %v, want ErrConflict", err)
	}
}

func testPasskeyCeremonySingleUse(t *testing.T, s LoginStores, p login.PasskeyStore) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.once"))
	enrolPasskey(t, s, newPasskey(u.ID, "pk-1", 1), 1)
	// The enrolment's ceremony again: refused, nothing written.
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-2", 2), *use(1), rec("x")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("ceremony used twice: %v, want ErrConflict", err)
	}
	sess, th := commitSession(u.ID, 2)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Ceremony: use(1), Session: sess, TokenHash: th}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("sign-in with a used ceremony: %v, want ErrConflict", err)
	}
	wantSession(t, s, th, false)
	if list, _ := p.Passkeys(ctx, u.ID); len(list) != 1 {
		t.Fatalf("%d passkeys, want 1", len(list))
	}
	// Expired rows are pruned, so their keys would insert again (the
	// sealed ceremony no longer opens, so that is harmless).
	old := login.CeremonyUse{Key: bytes.Repeat([]byte{42}, 32), Expires: time.Now().Add(-time.Hour)}
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-3", 3), old, rec("x")); err != nil {
		t.Fatal(err)
	}
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-4", 4), old, rec("x")); err != nil {
		t.Fatalf("expired ceremony row not pruned: %v", err)
	}
}

func testPasskeySignCount(t *testing.T, s LoginStores, p login.PasskeyStore) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.count"))
	c := newPasskey(u.ID, "pk-1", 1)
	enrolPasskey(t, s, c, 1)
	next := c
	next.SignCount, next.BackupState, next.LastUsed = 8, false, c.LastUsed.Add(time.Minute)
	sess, th := commitSession(u.ID, 2)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Ceremony: use(2), PasskeyUse: &passkey.Use{Credential: next, PrevSignCount: 7},
		Session: sess, TokenHash: th}); err != nil {
		t.Fatal(err)
	}
	got, _ := p.Passkeys(ctx, u.ID)
	if got[0].SignCount != 8 || got[0].BackupState || !got[0].LastUsed.Equal(next.LastUsed) {
		t.Fatalf("after use: %+v", got[0])
	}
	// A concurrent sign-in that read count 7 loses.
	sess, th = commitSession(u.ID, 3)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: u.ID, Ceremony: use(3), PasskeyUse: &passkey.Use{Credential: next, PrevSignCount: 7},
		Session: sess, TokenHash: th}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale counter: %v, want ErrConflict", err)
	}
	wantSession(t, s, th, false)
	// Another user's passkey cannot be touched.
	o := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.count2"))
	sess, th = commitSession(o.ID, 4)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: o.ID, PasskeyUse: &passkey.Use{Credential: next, PrevSignCount: 8},
		Session: sess, TokenHash: th}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("another user's passkey: %v, want ErrConflict", err)
	}
}

func testPasskeyRenameDelete(t *testing.T, s LoginStores, p login.PasskeyStore) {
	ctx := t.Context()
	u := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.manage"))
	o := mustCreate(t, IdentityStores{Users: s.Users}, newUser(t, "pk.intruder"))
	enrolPasskey(t, s, newPasskey(u.ID, "pk-1", 1), 1)
	if err := login.RenamePasskey(ctx, s.Tx, u.ID, "pk-1", "Phone", rec("rename")); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Passkeys(ctx, u.ID); got[0].Name != "Phone" {
		t.Fatalf("name = %q", got[0].Name)
	}
	for _, err := range []error{
		login.RenamePasskey(ctx, s.Tx, o.ID, "pk-1", "Mine", rec("x")),
		login.RenamePasskey(ctx, s.Tx, u.ID, "pk-none", "x", rec("x")),
		login.DeletePasskey(ctx, s.Tx, o.ID, "pk-1", rec("x")),
		login.DeletePasskey(ctx, s.Tx, u.ID, "pk-none", rec("x")),
	} {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("foreign or unknown passkey: %v, want ErrNotFound", err)
		}
	}
	// The only factor: refused, kept, not audited as done.
	n := auditCount(t, s.Store)
	if err := login.DeletePasskey(ctx, s.Tx, u.ID, "pk-1", rec("x")); !errors.Is(err, login.ErrLastFactor) || !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("deleting the last factor: %v, want ErrLastFactor", err)
	}
	if auditCount(t, s.Store) != n {
		t.Fatal("refused deletion appended its audit record")
	}
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(u.ID, "pk-2", 2), *use(2), rec("add")); err != nil {
		t.Fatal(err)
	}
	if err := login.DeletePasskey(ctx, s.Tx, u.ID, "pk-1", rec("delete")); err != nil {
		t.Fatalf("deleting one of two: %v", err)
	}
	if got, _ := p.Passkeys(ctx, u.ID); len(got) != 1 || got[0].ID != "pk-2" {
		t.Fatalf("after delete: %+v", got)
	}
	// With a TOTP secret the last passkey may go.
	if err := login.PutTOTP(ctx, s.Tx, o.ID, []byte("sealed"), rec("totp")); err != nil {
		t.Fatal(err)
	}
	sess, th := commitSession(o.ID, 5)
	if err := login.ApplyCommit(ctx, s.Tx, login.Commit{UserID: o.ID, Enrol: true, TOTP: &login.StepChange{From: 0, To: 1}, Session: sess, TokenHash: th}); err != nil {
		t.Fatal(err)
	}
	if err := login.AddPasskey(ctx, s.Tx, newPasskey(o.ID, "pk-o", 5), *use(5), rec("add")); err != nil {
		t.Fatal(err)
	}
	if err := login.DeletePasskey(ctx, s.Tx, o.ID, "pk-o", rec("delete")); err != nil {
		t.Fatalf("deleting the last passkey of a TOTP user: %v", err)
	}
}
