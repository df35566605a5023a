package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file inside the data directory.
const FileName = "phivault.lock"

// Mode is how a process holds the directory.
type Mode int

const (
	// Shared: servers; several may hold it at once.
	Shared Mode = iota
	// Exclusive: a command that must run alone.
	Exclusive
)

// BusyError is the answer when another process holds the directory in
// a conflicting mode.
type BusyError struct {
	Dir     string
	PID     int    // the holder's pid as its lock file says (0: unknown)
	Command string // the holder's command ("serve", "import"), if known
}

func (e *BusyError) Error() string {
	who := "a running phivault"
	switch {
	case e.PID > 0 && e.Command != "":
		who += " (pid " + strconv.Itoa(e.PID) + ": " + e.Command + ")"
	case e.PID > 0:
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	if e.Command == "" || e.Command == "serve" || e.Command == "demo" {
		return fmt.Sprintf("the data directory %s is in use by %s; stop it or use the API (import --url with a token)", e.Dir, who)
	}
	return fmt.Sprintf("the data directory %s is in use by %s; wait for it to finish or stop it", e.Dir, who)
}

// ErrBusy matches every BusyError (errors.Is).
var ErrBusy = errors.New("data directory in use")

// Is makes errors.Is(err, ErrBusy) hold.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Lock is a held data directory.
type Lock struct {
	f *os.File
}

// Acquire holds dir in mode for command without waiting: a conflicting
// holder makes it return a *BusyError. The directory must exist.
func Acquire(dir string, mode Mode, command string) (*Lock, error) {
	p := filepath.Join(dir, FileName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	if err := flock(f, mode); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			pid, cmd := readHolder(p)
			return nil, &BusyError{Dir: dir, PID: pid, Command: cmd}
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	// Name this holder. Shared holders overwrite one another: the file
	// names the last one, which is enough for the message.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+command+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release lets the directory go. It is safe to call on nil.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

func readHolder(p string) (pid int, command string) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, ""
	}
	f := strings.Fields(string(b))
	if len(f) > 0 {
		pid, _ = strconv.Atoi(f[0])
	}
	if len(f) > 1 {
		command = strings.Join(f[1:], " ")
	}
	return pid, command
}
