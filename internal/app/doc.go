// Package app is the composition root: it opens the key-encryption key,
// the database and every component, in one place, from one validated
// configuration, hands each component the narrow views of the store it
// declares (ADR 0024), and exposes the services, one accessor each.
// The use-cases live in their domains (ADR 0026); nothing else
// constructs long-lived components.
//
// # Lifetime
//
// [Open] builds everything and starts the audit batcher and the
// transparency log (package tlog: integrator and watch goroutines); on
// any failure it closes what it built. [App.Serve] serves HTTP and runs
// the components' own background loops (attempt reports, the audit index
// follower, the KEK epochs, pruning, the daily log verification, SIEM
// exports), stopping them after the server drains. [App.Close] drains
// the batcher first, then closes the transparency log after a last
// integration, then the database. [Provision] creates a new instance
// ("phivault init") and [SeedDemo] the demo's data set.
package app
