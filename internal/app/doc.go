// Package app is the composition root: it opens the key-encryption key,
// the database and every service, in one place, from one validated
// configuration. Nothing else constructs long-lived components.
//
// # Lifetime
//
// [Open] starts the audit batcher and the audit log integrator (the only
// goroutines app owns); [App.Close] drains the batcher first, then stops
// the integrator after a last integration (tlog.go), then closes the
// database. Close must be called after the HTTP server has stopped
// accepting requests.
package app
