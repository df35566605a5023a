// Package dirlock holds a data directory for one process: an advisory
// lock (flock) on DIR/phivault.lock, which the kernel releases when the
// process ends however it ends, so a crash leaves no stale lock.
//
// A server holds the directory shared: several servers, and the commands
// that are safe beside a server, may run at once. A command that must
// run alone (a direct import) holds it exclusive, and is refused while a
// server runs, as a server is refused while such a command runs. The
// lock file names its last holder (pid and command) for the message.
// ADR 0037.
package dirlock
