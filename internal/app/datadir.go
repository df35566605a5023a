package app

import (
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/dirlock"
)

// ErrDataDirBusy matches the error of HoldDataDir when another process
// holds the data directory (errors.Is).
var ErrDataDirBusy = dirlock.ErrBusy

// HoldDataDir holds c's data directory for this process until release
// (ADR 0037): shared for a server (serve, demo), exclusive for a command
// that must not run beside one (a direct import), so each refuses the
// other with who holds it. With PostgreSQL it holds nothing: the
// database is not in the directory, and a fleet's processes, each with
// its own directory or one shared, coordinate in the database.
func HoldDataDir(c config.Config, exclusive bool, command string) (release func(), err error) {
	if c.Storage.Driver == "postgres" {
		return func() {}, nil
	}
	mode := dirlock.Shared
	if exclusive {
		mode = dirlock.Exclusive
	}
	l, err := dirlock.Acquire(c.DataDir, mode, command)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release() }, nil
}
