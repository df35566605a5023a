package authn_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// BenchmarkPrincipalAPIToken is what a request with an API token pays to
// become a principal (bench/README.md "Authentication costs"): "warm" is
// the usual case, a hit in the 1 s token cache; "cold" is a miss, one
// indexed read on SQLite.
func BenchmarkPrincipalAPIToken(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	secret, tok, err := authn.NewToken("bench", []string{"system"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(b.Context(), func(tx storage.Tx) error { return tx.PutToken(b.Context(), tok) }); err != nil {
		b.Fatal(err)
	}
	header := "Bearer " + secret.Reveal()
	for _, c := range []struct {
		name string
		step time.Duration // clock advance per call: 0 keeps the cache warm
	}{{"warm", 0}, {"cold", 2 * time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			var ticks atomic.Int64
			start := time.Now()
			a := authn.NewAuthenticator(st, func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * c.step) })
			ctx := b.Context()
			if _, err := a.Bearer(ctx, header); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Bearer(ctx, header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
