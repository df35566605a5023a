package merkle_test

import (
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// BenchmarkVerifyBounds measures the two costs end-to-end verification
// cannot avoid, on the same 100,000-event SQLite log as BenchmarkVerify:
// reading every leaf's sealed body and stored leaf hash in leaf order
// (one goroutine: SQLite's single reader cursor), and opening every
// sealed body with the log key (both cores). Verification cannot run
// faster than the slower of the two.
func BenchmarkVerifyBounds(b *testing.B) {
	const n = 100_000
	c, d := verifyLog(b, n)
	b.ResetTimer()
	for range b.N {
		var bodies [][]byte
		start := time.Now()
		err := d.st.TLog().ScanLeaves(b.Context(), 0, n, func(lf storage.LogLeaf) error {
			bodies = append(bodies, lf.Body)
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
				for i := w; i < len(bodies); i += 2 {
					if _, _, err := c.log.OpenLeaf(bodies[i]); err != nil {
						done <- err
						return
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
		b.ReportMetric(float64(n)/open.Seconds(), "open-leaves/s")
	}
}
