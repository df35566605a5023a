package httpapi_test

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
)

// Authenticated auth rows (ADR 0022): SMART clients and grants.

// TestForgedSMARTClientRefused: a pending client approved in SQL, an
// approved client whose JWK Set was replaced, a client re-enabled after
// disabling, and a client inserted with the attacker's keys and
// system/*.rs get no token (401 invalid_client), with an integrity
// alarm; clients approved through the server keep working.
func TestForgedSMARTClientRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		db := rawDB(t, s)
		e := newSoD(t, s)
		sam := e.account(t, "sec.sam", "", identity.RoleSecurityAdmin)
		bob := e.account(t, "admin.bob", "", identity.RoleSecurityAdmin)
		ca := s.App.ClientAdmin()
		noClient := func(k backendKey, id string) {
			t.Helper()
			r := k.token(t, s, id).Want(t, http.StatusUnauthorized)
			if r.JSON["error"] != "invalid_client" || r.JSON["access_token"] != nil {
				t.Fatalf("token answer %s", r)
			}
		}

		// Approved in SQL, skipping the second administrator.
		k1 := newBackendKey(t)
		id1 := consoleRegister(t, s, e.m, sam, k1)
		execSQL(t, s, db, `UPDATE smart_clients SET approval = 'approved', approved_by = ? WHERE id = ?`, bob.ID, id1)
		noClient(k1, id1)
		wantAlarmLogged(t, s, "smart_clients", id1)
		waitAlert(t, s, db, "smart_clients", id1)

		// Approved by the second administrator: works; then its keys
		// replaced in SQL.
		k2 := newBackendKey(t)
		id2 := consoleRegister(t, s, e.m, sam, k2)
		req := clientRequest(t, s, e.as(t, bob), id2)
		if req == nil {
			t.Fatal("no approval request")
		}
		s.Do(t, "POST", "/admin/api/requests/"+req["id"].(string)+"/approve", nil, e.as(t, bob)).Want(t, http.StatusOK)
		k2.token(t, s, id2).Want(t, http.StatusOK)
		mine := newBackendKey(t)
		execSQL(t, s, db, `UPDATE smart_clients SET jwks = ? WHERE id = ?`, mine.jwks, id2)
		noClient(mine, id2)
		wantAlarmLogged(t, s, "smart_clients", id2)

		// Disabled by an administrator, re-enabled in SQL.
		sc, err := scope.ParseSet("system/*.rs")
		if err != nil {
			t.Fatal(err)
		}
		k3 := newBackendKey(t)
		id3, err := ca.RegisterBackendBreakGlass(t.Context(), cliAgent, smart.BackendRegistration{Name: "nightly", JWKS: []byte(k3.jwks), Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		k3.token(t, s, id3).Want(t, http.StatusOK)
		if err := ca.Disable(t.Context(), cliAgent, id3); err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, db, `UPDATE smart_clients SET disabled = ? WHERE id = ?`, false, id3)
		noClient(k3, id3)
		wantAlarmLogged(t, s, "smart_clients", id3)

		// Inserted with the attacker's keys.
		execSQL(t, s, db, `INSERT INTO smart_clients (id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled, approval, registered_by, approved_by)
VALUES ('forged-client', 'x', 'backend', ?, '', '[]', 'system/*.rs', ?, ?, 'approved', '', '')`, mine.jwks, time.Now().UnixMicro(), false)
		noClient(mine, "forged-client")
		wantAlarmLogged(t, s, "smart_clients", "forged-client")
	})
}

// appDB opens an App's database with plain SQL, as rawDB does, with
// its placeholder rewriting.
func appDB(t *testing.T, a *app.App) (*sql.DB, func(string) string) {
	t.Helper()
	d := a.Config.Storage.Driver
	return storageDB(t, a.Config.Storage), func(q string) string { return rebindFor(d, q) }
}

// TestForgedSMARTGrantRefused: an App Launch access token whose scopes
// were raised in SQL, a refresh token inserted for the authorization,
// an access token inserted for a client, and an authorization moved to
// another patient: none reaches data (401, invalid_grant), each with an
// integrity alarm; the real refresh token keeps rotating.
func TestForgedSMARTGrantRefused(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		e := startLaunch(t, driver)
		db, ph := appDB(t, e.app)
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(t.Context(), ph(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		alarmed := func(table string) {
			t.Helper()
			for _, line := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(line, "integrity alarm") && strings.Contains(line, `"table":"`+table+`"`) {
					return
				}
			}
			t.Fatalf("no integrity alarm logged for %s", table)
		}
		secret := e.addLaunchUser(t, "dr.grey", "Practitioner/pr-1", identity.RolePhysician)
		cfg := e.oauthConfig(e.clientID, "openid fhirUser launch/patient offline_access patient/*.rs")
		verifier := oauth2.GenerateVerifier()
		b := e.browser(t)
		picker := b.signIn(t, b.send(t, "GET", e.authURL(cfg, "st-1", verifier), nil), "dr.grey", secret)
		q := redirected(t, b.consent(t, b.pick(t, picker, "Launchling", e.mine.patient), "approve"))
		tok, err := cfg.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+e.mine.obs); got != http.StatusOK {
			t.Fatalf("real access token: %d", got)
		}

		// Scopes raised on a real access token.
		h := sha256.Sum256([]byte(tok.AccessToken))
		exec(`UPDATE smart_access_tokens SET scopes = 'patient/*.cruds' WHERE token_hash = ?`, h[:])
		e.clock.Advance(time.Minute) // past the validation cache
		if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+e.mine.obs); got != http.StatusUnauthorized {
			t.Fatalf("access token with scopes raised in SQL: %d, want 401", got)
		}
		alarmed("smart_access_tokens")

		// A refresh token inserted for the authorization.
		var authz string
		if err := db.QueryRowContext(t.Context(), ph(`SELECT authz_id FROM smart_access_tokens WHERE token_hash = ?`), h[:]).Scan(&authz); err != nil {
			t.Fatal(err)
		}
		var rb [32]byte
		if _, err := rand.Read(rb[:]); err != nil {
			t.Fatal(err)
		}
		mine := smart.RefreshTokenPrefix + base64.RawURLEncoding.EncodeToString(rb[:])
		rh := sha256.Sum256([]byte(mine))
		now := e.clock.Now()
		exec(`INSERT INTO smart_refresh_tokens (token_hash, authz_id, issued, expires, spent) VALUES (?, ?, ?, ?, ?)`,
			rh[:], authz, now.UnixMicro(), now.Add(24*time.Hour).UnixMicro(), false)
		_, err = cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: mine}).Token()
		wantOAuthError(t, err, "invalid_grant")
		alarmed("smart_refresh_tokens")

		// The real refresh token still rotates.
		tok2, err := cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("real refresh token: %v", err)
		}
		if got, _ := e.fhirGet(t, tok2.AccessToken, "/fhir/Observation/"+e.mine.obs); got != http.StatusOK {
			t.Fatalf("refreshed access token: %d", got)
		}

		// An access token inserted for the client, system-wide.
		var ab [32]byte
		if _, err := rand.Read(ab[:]); err != nil {
			t.Fatal(err)
		}
		forged := smart.AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(ab[:])
		fh := sha256.Sum256([]byte(forged))
		exec(`INSERT INTO smart_access_tokens (token_hash, client_id, scopes, issued, expires, revoked, authz_id) VALUES (?, ?, 'system/*.rs', ?, ?, ?, '')`,
			fh[:], e.clientID, now.UnixMicro(), now.Add(5*time.Minute).UnixMicro(), false)
		if got, _ := e.fhirGet(t, forged, "/fhir/Observation/"+e.other.obs); got != http.StatusUnauthorized {
			t.Fatalf("access token inserted in SQL: %d, want 401", got)
		}

		// The authorization moved to another patient.
		if got, _ := e.fhirGet(t, tok2.AccessToken, "/fhir/Observation/"+e.other.obs); got != http.StatusForbidden {
			t.Fatalf("before the edit, another patient's record: %d, want 403", got)
		}
		exec(`UPDATE smart_authorizations SET patient = ? WHERE id = ?`, e.other.patient, authz)
		e.clock.Advance(time.Minute) // past the validation cache
		if got, _ := e.fhirGet(t, tok2.AccessToken, "/fhir/Observation/"+e.other.obs); got != http.StatusUnauthorized {
			t.Fatalf("authorization moved to another patient in SQL: %d, want 401", got)
		}
		alarmed("smart_authorizations")
	})
}
