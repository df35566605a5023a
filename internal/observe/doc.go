// Package observe is phivault's operational telemetry: Prometheus
// metrics in a registry the application owns, the optional OpenTelemetry
// traces of the request path, and the pprof handlers of the admin
// listener (docs/observability.md, ADR 0040).
//
// # Seams
//
// The domains never import this package, Prometheus or OpenTelemetry
// (internal/archtest). Each declares the one-method observer or the
// counter it needs beside its consumer (audit.BatchObserver,
// authz.Observer, the caches' Stats methods) and the composition root
// (package app) hands it what [Metrics] returns. A nil observer costs
// nothing.
//
// # Security invariants
//
//   - No label value and no span attribute carries a request path, a
//     query string, a resource id, a token or anything a client chose:
//     requests are labelled by the ServeMux pattern that served them
//     ("GET /fhir/{type}/{id}"), a fixed set bounded by the code, and a
//     request no pattern served is [OtherRoute]. Status codes are
//     labelled by class ("2xx").
//   - The number of distinct routes is capped ([maxRoutes]); past it
//     every new name is [OtherRoute], so no input can grow the series.
//   - /metrics is served only behind a bearer token compared in constant
//     time ([RequireToken]) or on a listener the operator bound to
//     loopback; the pprof handlers only on their own listener, off by
//     default, each request allowed by the caller's check (an admin API
//     token).
//   - Spans are root spans: an incoming traceparent header is ignored,
//     so a client can neither force sampling nor join our traces.
//
// # Concurrency
//
// Every method of [Metrics] is safe for concurrent use. The request
// path costs a map lookup (copy-on-write, no lock) and the counter and
// histogram updates; a route's observers are created once.
package observe
