// Package cli is phivault's command line: one cobra command per
// subcommand, all of them thin over internal/app.
//
// Commands write human output to stdout, progress and diagnostics to
// stderr, and never print secrets except where printing one is the
// point (a new token, printed once).
package cli
