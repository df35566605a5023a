package monitor

import (
	"math"
	"slices"
)

// Baselines for volume and browsing: a user's count in a window is
// compared with the median and the median absolute deviation (MAD) of
// the same count in the user's own past windows and in their peers'
// windows (same role code and department). The robust z-score is
// Iglewicz and Hoaglin's modified z, 0.6745*(x-median)/MAD, cut at
// 3.5 ("Volume 16: How to Detect and Handle Outliers", 1993). Counts
// are discrete and most windows are quiet, so the MAD is often 0: the
// scale is floored at the Poisson standard deviation sqrt(median)
// (and at 1), which keeps a z of 3.5 meaning "well outside what is
// usual" at any size of hospital.

// ring is a bounded history of window counts.
type ring struct {
	v    []float64
	next int
}

func newRing(n int) *ring { return &ring{v: make([]float64, 0, n)} }

func (r *ring) add(x float64) {
	if len(r.v) < cap(r.v) {
		r.v = append(r.v, x)
		return
	}
	r.v[r.next] = x
	r.next = (r.next + 1) % len(r.v)
}

// minBaseline is the fewest past windows a baseline needs.
const minBaseline = 5

// baseline is the median and robust scale of past counts.
type baseline struct {
	med, scale float64
	ok         bool
}

// z is the robust z-score of x.
func (b baseline) z(x float64) float64 { return (x - b.med) / b.scale }

// robust computes the baseline of vals, or ok false when there are too
// few; scratch is reused and returned.
func robust(vals, scratch []float64) (baseline, []float64) {
	if len(vals) < minBaseline {
		return baseline{}, scratch
	}
	s := append(scratch[:0], vals...)
	slices.Sort(s)
	med := median(s)
	for i, v := range s {
		s[i] = math.Abs(v - med)
	}
	slices.Sort(s)
	scale := median(s) / 0.6745
	if floor := math.Sqrt(math.Max(med, 1)); scale < floor {
		scale = floor
	}
	return baseline{med: med, scale: scale, ok: true}, s
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
