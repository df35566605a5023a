package observe

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// CacheStats reports a cache's hits and misses since it was created.
// Implementations must be safe for concurrent use and cheap (atomics):
// every scrape calls Stats.
type CacheStats interface {
	Stats() (hits, misses uint64)
}

// StatsFunc adapts a function to [CacheStats].
type StatsFunc func() (hits, misses uint64)

// Stats calls f.
func (f StatsFunc) Stats() (hits, misses uint64) { return f() }

// RegisterCache exports c as phivault_cache_hits_total and
// phivault_cache_misses_total with the label cache=name (a fixed name
// chosen by the caller, e.g. "api_token"). Registering a name twice is
// an error.
func (m *Metrics) RegisterCache(name string, c CacheStats) error {
	labels := prometheus.Labels{"cache": name}
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "cache", Name: "hits_total",
		Help: "Lookups a cache answered.", ConstLabels: labels}, func() float64 { h, _ := c.Stats(); return float64(h) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "cache", Name: "misses_total",
		Help: "Lookups a cache could not answer (absent or expired).", ConstLabels: labels}, func() float64 { _, mi := c.Stats(); return float64(mi) })
	for _, col := range []prometheus.Collector{hits, misses} {
		if err := m.reg.Register(col); err != nil {
			return fmt.Errorf("registering cache %s: %w", name, err)
		}
	}
	return nil
}
