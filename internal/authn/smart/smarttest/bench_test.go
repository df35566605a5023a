package smarttest_test

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// BenchmarkValidateAccessTokenSQLite measures a cache miss: two indexed
// reads (token, client) on SQLite. With the cache on (the default) the
// cost is BenchmarkValidateAccessToken in package smart.
func BenchmarkValidateAccessTokenSQLite(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := db.Smart()
	scopes, _ := scope.ParseSet("system/*.rs")
	now := time.Now()
	if err := st.CreateClient(b.Context(), smart.Client{ID: "c1", Name: "bench", Type: smart.Backend, JWKSURL: "https://x.example/j", Scopes: scopes, Created: now, Approval: smart.ApprovalBreakGlass}); err != nil {
		b.Fatal(err)
	}
	srv, err := smart.New(st, smart.Options{BaseURL: "https://phivault.test", Audit: &nopAudit{}, TokenCacheTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	tok := "pva_" + rand.Text() + rand.Text()[:17] // 43 characters after the prefix
	if err := st.PutToken(b.Context(), smart.Token{Hash: hash(tok), ClientID: "c1", Scopes: scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srv.ValidateAccessToken(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrincipalSMART is what a request with a SMART access token
// pays to become a principal (bench/README.md "Authentication costs"):
// "warm" hits the server's access-token cache (the default), "cold" is
// a miss with two indexed reads on SQLite (the cache disabled). The
// principal itself is built from the grant without further reads.
func BenchmarkPrincipalSMART(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := db.Smart()
	scopes, _ := scope.ParseSet("system/*.rs")
	now := time.Now()
	if err := st.CreateClient(b.Context(), smart.Client{ID: "c1", Name: "bench", Type: smart.Backend, JWKSURL: "https://x.example/j", Scopes: scopes, Created: now, Approval: smart.ApprovalBreakGlass}); err != nil {
		b.Fatal(err)
	}
	tok := "pva_" + rand.Text() + rand.Text()[:17]
	if err := st.PutToken(b.Context(), smart.Token{Hash: hash(tok), ClientID: "c1", Scopes: scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ttl  time.Duration // 0: the default cache; -1: no cache
	}{{"warm", 0}, {"cold", -1}} {
		b.Run(c.name, func(b *testing.B) {
			srv, err := smart.New(st, smart.Options{BaseURL: "https://phivault.test", Audit: &nopAudit{}, TokenCacheTTL: c.ttl})
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			if _, err := srv.ValidateAccessToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				g, err := srv.ValidateAccessToken(ctx, tok)
				if err != nil || !g.Scopes.Allows(scope.System, "Observation", scope.Read) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateNewTokenKnownClient measures the usual cache miss: a
// token not seen before, of a client already seen. Run it with
// -benchtime 2000x so that every iteration validates a distinct token.
func BenchmarkValidateNewTokenKnownClient(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := db.Smart()
	scopes, _ := scope.ParseSet("system/*.rs")
	now := time.Now()
	if err := st.CreateClient(b.Context(), smart.Client{ID: "c1", Name: "bench", Type: smart.Backend, JWKSURL: "https://x.example/j", Scopes: scopes, Created: now, Approval: smart.ApprovalBreakGlass}); err != nil {
		b.Fatal(err)
	}
	const n = 2000
	toks := make([]string, n)
	for i := range toks {
		toks[i] = "pva_" + rand.Text() + rand.Text()[:17]
		if err := st.PutToken(b.Context(), smart.Token{Hash: hash(toks[i]), ClientID: "c1", Scopes: scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := smart.New(st, smart.Options{BaseURL: "https://phivault.test", Audit: &nopAudit{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	// One token first, so the client is known.
	if _, err := srv.ValidateAccessToken(ctx, toks[n-1]); err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srv.ValidateAccessToken(ctx, toks[i%(n-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
