package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
	"github.com/phivault/phivault/internal/identity"
)

// Authenticated auth rows (ADR 0022): second factors, SSO links and
// break-the-glass grants.

// TestForgedRecoveryCodeRefused: recovery codes copied in SQL from an
// account the attacker controls to one whose password they know (with
// or without the copied MAC) do not pass the second factor; the
// account's own codes still do. (Passkeys carry a MAC the same way;
// TOTP secrets are sealed bound to the user id.)
func TestForgedRecoveryCodeRefused(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		e := startAuthOn(t, nil, "", driver)
		db, ph := appDB(t, e.app)
		const pw, pw2 = "correct horse battery staple", "another long passphrase 42"
		victim := e.addUser(t, "dr.who", pw, identity.RolePhysician)
		_, codes, _ := e.enrol(t, "dr.who", pw)
		mallory := e.addUser(t, "mallory", pw2, identity.RoleResearcher)
		_, mine, _ := e.enrol(t, "mallory", pw2)
		if _, err := db.ExecContext(t.Context(), ph(`INSERT INTO recovery_codes (user_id, hash, mac) SELECT ?, hash, mac FROM recovery_codes WHERE user_id = ?`), victim.ID, mallory.ID); err != nil {
			t.Fatal(err)
		}
		if r := e.verify(t, "dr.who", pw, "recovery", mine[0]); r.status != http.StatusUnauthorized {
			t.Fatalf("a recovery code copied from another account: %d %s, want 401", r.status, r.body)
		}
		if !strings.Contains(e.logs.String(), `"table":"recovery_codes"`) {
			t.Fatal("no integrity alarm for the copied recovery codes")
		}
		if _, err := db.ExecContext(t.Context(), ph(`UPDATE recovery_codes SET mac = NULL WHERE user_id = ? AND hash IN (SELECT hash FROM recovery_codes WHERE user_id = ?)`), victim.ID, mallory.ID); err != nil {
			t.Fatal(err)
		}
		if r := e.verify(t, "dr.who", pw, "recovery", mine[1]); r.status != http.StatusUnauthorized {
			t.Fatalf("a recovery code inserted without a MAC: %d, want 401", r.status)
		}
		sessionOf(t, e.verify(t, "dr.who", pw, "recovery", codes[0]))
	})
}

// TestForgedPasskeyRefused: a passkey for an account whose password
// the attacker knows, made for that account's WebAuthn user handle and
// inserted in SQL (here: a real registration's row, deleted and
// inserted again without its MAC, as an attacker who built it offline
// would store it), does not pass the second factor, with an integrity
// alarm. The account's own passkey keeps working. (A passkey moved from
// another account is refused by its WebAuthn user handle as well.)
func TestForgedPasskeyRefused(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := startAuthOn(t, nil, "localhost", driver)
			db, ph := appDB(t, e.app)
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(t.Context(), ph(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			const pw = "correct horse battery staple"
			e.addUser(t, "dr.who", pw, identity.RolePhysician)
			_, _, c := e.enrol(t, "dr.who", pw) // TOTP first
			add := func(a *passkeytest.Authenticator) string {
				t.Helper()
				b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, c)
				cred, err := a.Register(optionsOf(t, b))
				if err != nil {
					t.Fatal(err)
				}
				r := e.do(t, "POST", "/auth/webauthn/register/finish", map[string]any{"ceremony": b.str("ceremony"), "name": "k", "credential": json.RawMessage(cred)}, c)
				if r.status != http.StatusCreated {
					t.Fatalf("add passkey: %d %s", r.status, r.body)
				}
				return r.json["passkey"].(map[string]any)["id"].(string)
			}
			own, forged := e.authenticator(t), e.authenticator(t)
			add(own)
			fid := add(forged)
			if r, _ := e.passkeyLogin(t, "dr.who", pw, forged); r.status != http.StatusOK {
				t.Fatalf("before the forgery: %d", r.status)
			}
			// The forged credential's row, as the attacker inserts it.
			exec(`CREATE TABLE forged_pk AS SELECT * FROM webauthn_credentials WHERE id = ?`, fid)
			exec(`DELETE FROM webauthn_credentials WHERE id = ?`, fid)
			exec(`INSERT INTO webauthn_credentials SELECT * FROM forged_pk`)
			exec(`UPDATE webauthn_credentials SET mac = NULL WHERE id = ?`, fid)
			ch := e.challenge(t, "dr.who", pw)
			b := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
			if b.status == http.StatusOK {
				opts, err := json.Marshal(b.json["options"])
				if err != nil {
					t.Fatal(err)
				}
				if cred, err := forged.Assert(opts); err == nil {
					fin := e.do(t, "POST", "/auth/webauthn/login/finish", map[string]any{"challenge": ch.str("challenge"),
						"ceremony": b.str("ceremony"), "credential": json.RawMessage(cred)}, creds{})
					if fin.status == http.StatusOK {
						t.Fatalf("a passkey inserted in SQL signed in: %s", fin.body)
					}
				}
			}
			if !strings.Contains(e.logs.String(), `"table":"webauthn_credentials"`) || !strings.Contains(e.logs.String(), fid) {
				t.Fatal("no integrity alarm for the inserted passkey")
			}
			if r, _ := e.passkeyLogin(t, "dr.who", pw, own); r.status != http.StatusOK {
				t.Fatalf("the account's own passkey: %d", r.status)
			}
		})
	}
}

// TestForgedSSOLinkRefused: the attacker's IdP identity, linked to their
// own account, moved in SQL to a security administrator's account does
// not sign them in as the administrator: the link does not verify, with
// an integrity alarm.
func TestForgedSSOLinkRefused(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := startSSOOn(t, true, driver)
			db, ph := appDB(t, e.app)
			eve := &idpUser{sub: "00u1eve", email: "eve@hospital.example", name: "Eve", groups: []string{"research"}, amr: []string{"pwd", "otp"}}
			r := e.signIn(t, eve, "application/json")
			if _, ok := e.linked(t, eve.sub); !ok {
				t.Fatalf("no account linked to the attacker's identity: %d %s", r.status, r.body)
			}
			admin := e.addUser(t, "admin.alice", "correct horse battery staple", identity.RoleSecurityAdmin)
			if _, err := db.ExecContext(t.Context(), ph(`UPDATE sso_links SET user_id = ? WHERE subject = ?`), admin.ID, eve.sub); err != nil {
				t.Fatal(err)
			}
			if u, ok := e.linked(t, eve.sub); ok {
				t.Fatalf("the moved link resolves to %s", u.Username)
			}
			if !strings.Contains(e.logs.String(), `"table":"sso_links"`) {
				t.Fatal("no integrity alarm for the moved link")
			}
			r = e.signIn(t, eve, "application/json")
			if c := sessionCookie(r); c != "" {
				if a := e.do(t, "GET", "/admin/api/users", nil, creds{cookie: c}); a.status == http.StatusOK {
					t.Fatalf("signed in as the administrator through a moved link: %s", a.body)
				}
			}
		})
	}
}

// TestForgedBreakGlassGrantRefused: a break-the-glass grant copied in
// SQL (with its MAC) to another patient grants nothing there, with an
// integrity alarm; the real grant keeps working.
func TestForgedBreakGlassGrantRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		db := rawDB(t, s)
		a := newActor(t, s, "physician", "")
		p1 := s.Create(t, map[string]any{"resourceType": "Patient", "active": true})
		p2 := s.Create(t, map[string]any{"resourceType": "Patient", "active": true})
		s.Do(t, "GET", "/fhir/Patient/"+p2, nil, a.headers).Want(t, http.StatusForbidden)
		body := map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "reason", "valueCode": "ETREAT"},
			map[string]any{"name": "text", "valueString": "authrows emergency"}}}
		s.Do(t, "POST", "/fhir/Patient/"+p1+"/$break-glass", body, a.wheaders).Want(t, http.StatusCreated)
		s.Do(t, "GET", "/fhir/Patient/"+p1, nil, a.headers).Want(t, http.StatusOK)
		execSQL(t, s, db, `INSERT INTO authz_grants (id, user_id, patient, reason, note, created, expires, mac)
SELECT 'grant-forged', user_id, ?, reason, note, created, expires, mac FROM authz_grants WHERE user_id = ?`, "Patient/"+p2, a.userID)
		// A CareTeam write makes the authorizer reload its facts (grants).
		s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active"})
		s.Do(t, "GET", "/fhir/Patient/"+p2, nil, a.headers).Want(t, http.StatusForbidden)
		wantAlarmLogged(t, s, "authz_grants", "grant-forged")
		s.Do(t, "GET", "/fhir/Patient/"+p1, nil, a.headers).Want(t, http.StatusOK)
	})
}
