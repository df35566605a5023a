// Package storagetest is the conformance suite every storage.Store
// driver must pass, and the shared benchmarks. Drivers call Run from
// their own tests with a function that opens a fresh, empty store per
// case; ConcurrentRMW is exported for driver tests that race several
// Store instances on one database. RunIdentity is the suite of the
// identity and session stores (sqldb.Store.Users and Sessions); RunLog
// the suite of the transparency log store (sqldb.Store.TLog).
//
// The suite asserts behaviour a user would notice: lost updates,
// version gaps, deleted or shredded resources found by search, hostile
// identifiers changing the database, audit records out of order.
package storagetest
