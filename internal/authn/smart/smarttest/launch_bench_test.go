package smarttest_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// keyringless is a Sealer for benchmarks that never seal anything: the
// refresh grant does not use it.
type keyringless struct{}

func (keyringless) SealToken(string, []byte) (string, error) { panic("not used") }
func (keyringless) OpenToken(string, string) ([]byte, error) { panic("not used") }

// BenchmarkRefreshRotationSQLite is one refresh_token grant through the
// token handler on SQLite: read the refresh token and its
// authorization, spend it and store its successor in one transaction,
// store a new access token. Each iteration presents the token the
// previous one returned.
func BenchmarkRefreshRotationSQLite(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := db.Smart()
	sc, _ := scope.ParseSet("offline_access patient/*.rs")
	now := time.Now()
	ctx := b.Context()
	if err := st.CreateClient(ctx, smart.Client{ID: "app", Name: "bench", Type: smart.Public, RedirectURIs: []string{"https://a.example/cb"}, Scopes: sc, Created: now, Approval: smart.ApprovalApproved, ApprovedBy: "usr_b"}); err != nil {
		b.Fatal(err)
	}
	a := smart.Authorization{ID: "az", ClientID: "app", UserID: "u", Patient: "p", Scopes: sc, Created: now, Expires: now.Add(24 * time.Hour)}
	if err := st.CreateAuthorization(ctx, a, smart.Code{Hash: hash("code"), Authorization: "az", RedirectURI: "https://a.example/cb", Challenge: "c", Expires: now}); err != nil {
		b.Fatal(err)
	}
	rt := "pvr_" + rand.Text() + rand.Text()[:17]
	if err := st.PutRefreshToken(ctx, smart.RefreshToken{Hash: hash(rt), Authorization: "az", Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	srv, err := smart.New(st, smart.Options{BaseURL: "https://phivault.test", Audit: &nopAudit{}, Launch: st, Sealer: keyringless{}})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.TokenHandler()
	b.ReportAllocs()
	for b.Loop() {
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}}
		req := httptest.NewRequestWithContext(ctx, "POST", "/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("refresh: %d %s", w.Code, w.Body)
		}
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.RefreshToken == "" || out.RefreshToken == rt {
			b.Fatal("no rotated refresh token")
		}
		rt = out.RefreshToken
	}
}
