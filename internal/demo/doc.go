// Package demo builds the data set of "phivault demo": synthetic
// patients (package synth) stored through a trusted operator of the
// record, and one account per workforce role and one patient account,
// with generated passwords and, for the workforce, a TOTP secret enrolled
// through the login service's own flow, so a person can sign in with a
// real authenticator app.
//
// Printing secrets is the point of a demo: the accounts are written to
// AccountsFile (mode 0600) in the data directory and printed. Nothing
// here runs outside "phivault demo"; the composition root (app.SeedDemo)
// hands it the services it uses.
package demo
