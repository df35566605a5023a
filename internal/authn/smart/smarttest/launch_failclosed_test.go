package smarttest_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// switchAudit fails while down is set.
type switchAudit struct{ down atomic.Bool }

func (a *switchAudit) Record(context.Context, audit.Event) error {
	if a.down.Load() {
		return errors.New("audit log unavailable")
	}
	return nil
}

// TestLaunchFailClosed: when the audit log cannot record the event, no
// token is issued, and a refresh token is not spent (the app retries).
func TestLaunchFailClosed(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := db.Smart()
	ctx := t.Context()
	sc, _ := scope.ParseSet("offline_access patient/*.rs")
	now := time.Now()
	if err := st.CreateClient(ctx, smart.Client{ID: "app", Name: "app", Type: smart.Public, RedirectURIs: []string{"https://a.example/cb"}, Scopes: sc, Created: now, Approval: smart.ApprovalApproved, ApprovedBy: "usr_b"}); err != nil {
		t.Fatal(err)
	}
	aud := &switchAudit{}
	srv, err := smart.New(st, smart.Options{BaseURL: "https://phivault.test", Audit: aud, Launch: st, Sealer: keyringless{}})
	if err != nil {
		t.Fatal(err)
	}
	post := func(form url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, "POST", smart.TokenPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		srv.TokenHandler().ServeHTTP(w, req)
		return w
	}

	// Consent: no code without its audit event.
	aud.down.Store(true)
	req := smart.AuthorizeRequest{ClientID: "app", RedirectURI: "https://a.example/cb", State: "s", Scope: sc, RawScope: sc.String(),
		Challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}
	if _, err := srv.Approve(ctx, httptest.NewRequest("POST", "/", nil), req, smart.Approval{User: smart.LaunchUser{ID: "u"}, Patient: "p"}); err == nil {
		t.Fatal("Approve succeeded without its audit event")
	}

	// Code exchange: no token without its audit event.
	aud.down.Store(false)
	to, err := srv.Approve(ctx, httptest.NewRequest("POST", "/", nil), req, smart.Approval{User: smart.LaunchUser{ID: "u"}, Patient: "p"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(to)
	exchange := url.Values{"grant_type": {"authorization_code"}, "client_id": {"app"}, "code": {u.Query().Get("code")},
		"redirect_uri": {"https://a.example/cb"}, "code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}}
	aud.down.Store(true)
	if w := post(exchange); w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "access_token") {
		t.Fatalf("exchange with the audit log down: %d %s", w.Code, w.Body)
	}

	// Refresh: refused while the log is down, and the token stays usable.
	rt := "pvr_" + base64.RawURLEncoding.EncodeToString([]byte(rand.Text() + rand.Text())[:32])
	h := sha256.Sum256([]byte(rt))
	if err := st.PutRefreshToken(ctx, smart.RefreshToken{Hash: h[:], Authorization: authorizationOf(t, st, u.Query().Get("code")), Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}}
	if w := post(refresh); w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "access_token") {
		t.Fatalf("refresh with the audit log down: %d %s", w.Code, w.Body)
	}
	aud.down.Store(false)
	if w := post(refresh); w.Code != http.StatusOK {
		t.Fatalf("refresh after the log recovered: %d %s (the token was spent by a refused request)", w.Code, w.Body)
	}
}

// authorizationOf returns the authorization of a (used) code.
func authorizationOf(t *testing.T, st smart.LaunchStore, code string) string {
	t.Helper()
	h := sha256.Sum256([]byte(code))
	_, a, err := st.UseCode(t.Context(), h[:])
	if err != nil && !errors.Is(err, smart.ErrCodeUsed) {
		t.Fatal(err)
	}
	return a.ID
}
