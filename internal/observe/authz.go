package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Authorization operations, the values of the op label.
const (
	OpDecide = "decide" // one request's decision (authz.Authorizer.Decide)
	OpNarrow = "narrow" // a search's filter (authz.Authorizer.Narrow)
)

func (m *Metrics) registerAuthz() {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "authz", Name: "decision_seconds",
		Help:    "Time of an authorization decision (op=decide) or search filter (op=narrow), facts loading included.",
		Buckets: latencyBuckets}, []string{"op"})
	m.reg.MustRegister(v)
	m.decide, m.narrow = v.WithLabelValues(OpDecide), v.WithLabelValues(OpNarrow)
}

// Authz returns the observer of the authorizer (authz.Observer).
func (m *Metrics) Authz() AuthzObserver { return AuthzObserver{m: m} }

// AuthzObserver records authorization decisions. Its zero value is not
// usable; get it from [Metrics.Authz].
type AuthzObserver struct{ m *Metrics }

// Decided records one operation (OpDecide, OpNarrow; anything else
// counts as OpDecide) that began at start, and with tracing on adds it
// to the request's trace as the span "authz.<op>".
func (o AuthzObserver) Decided(ctx context.Context, op string, start time.Time, err error) {
	end := time.Now()
	obs, name := o.m.decide, "authz.decide"
	if op == OpNarrow {
		obs, name = o.m.narrow, "authz.narrow"
	}
	obs.Observe(end.Sub(start).Seconds())
	o.m.childSpan(ctx, name, start, end, err)
}
