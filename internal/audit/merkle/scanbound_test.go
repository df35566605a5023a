package merkle_test

import (
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// BenchmarkVerifyBounds measures the costs end-to-end verification
// cannot avoid, on the same 100,000-event SQLite log as BenchmarkVerify:
// reading every sealed entry bundle in order (one goroutine: SQLite's
// single reader cursor), and opening the bundles and hashing their
// leaves (both cores). Verification cannot run faster than the slower
// of the two, nor than the tree recomputation (BenchmarkRecomputeTree).
func BenchmarkVerifyBounds(b *testing.B) {
	const n = 100_000
	c, d := verifyLog(b, n)
	b.ResetTimer()
	for range b.N {
		var bundles []storage.Bundle
		start := time.Now()
		err := d.st.TLog().ScanBundles(b.Context(), 0, 1<<40, func(bd storage.Bundle) error {
			bundles = append(bundles, bd)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		scan := time.Since(start)
		start = time.Now()
		done := make(chan error, 2)
		for w := range 2 {
			go func() {
				for i := w; i < len(bundles); i += 2 {
					leaves, _, err := c.log.OpenBundle(bundles[i].N, bundles[i].Width, bundles[i].Sealed)
					if err != nil {
						done <- err
						return
					}
					for _, l := range leaves {
						_ = tlog.RecordHash(l)
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		open := time.Since(start)
		b.ReportMetric(float64(n)/scan.Seconds(), "scan-leaves/s")
		b.ReportMetric(float64(n)/open.Seconds(), "open-hash-leaves/s")
	}
}
