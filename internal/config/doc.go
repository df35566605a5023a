// Package config is the one reader of phivault's configuration.
//
// Configuration is read once, in this order, each layer overriding the
// one before: the file phivault.json in the data directory, then
// PHIVAULT_* environment variables, then command-line flags. [Load]
// validates the result and every error names the option at fault.
// Components receive their own sub-struct, never the whole Config.
//
// # Security invariants
//
//   - Secrets are never read from the file or flags: the KEK lives in its
//     own key file (or a KMS); the audit log signing key is stored in the
//     database wrapped under the KEK.
//     A PostgreSQL URL may carry a password; prefer PGPASSWORD or
//     ~/.pgpass, and the URL is never logged (see [Storage.LogValue]).
//   - Relative paths are resolved against the data directory, so a
//     config file cannot point a process at another working directory's
//     files by accident.
package config
