//go:build !unix

package dirlock

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flock holds nothing where flock(2) does not exist: the lock is a
// safeguard of Unix hosts, where phivault is built to run.
func flock(*os.File, Mode) error { return nil }
