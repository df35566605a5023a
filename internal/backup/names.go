package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Object names. A backup named N is stored as N (the age ciphertext),
// N+SumSuffix (its SHA-256, hex) and N+SummarySuffix (the plaintext
// summary, no PHI).
const (
	namePrefix    = "phivault-"
	nameSuffix    = ".age"
	SumSuffix     = ".sha256"
	SummarySuffix = ".json"
	nameTime      = "20060102T150405.000000000Z"
	maxNameLen    = 255
)

// ErrBadName means an object name is not a flat, printable name.
var ErrBadName = errors.New("backup: bad object name")

// ValidName reports whether name is a name a Store accepts: flat (no
// "/" or "\"), not "." or "..", no ".." anywhere, printable ASCII
// without spaces, at most 255 bytes. Errors wrap ErrBadName.
func ValidName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: empty or longer than %d bytes", ErrBadName, maxNameLen)
	}
	if strings.Contains(name, "..") || name == "." {
		return fmt.Errorf("%w: %q contains \"..\"", ErrBadName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return fmt.Errorf("%w: byte %d is not allowed", ErrBadName, i)
		}
	}
	return nil
}

// NewName returns the object name of a backup created at t (UTC, to the
// nanosecond, so two backups of one second do not collide).
func NewName(t time.Time) string {
	return namePrefix + t.UTC().Format(nameTime) + nameSuffix
}

// IsBackupName reports whether name is the name of a backup archive (not
// a sidecar), and its creation time.
func IsBackupName(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return time.Time{}, false
	}
	s, ok = strings.CutSuffix(s, nameSuffix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(nameTime, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Remove deletes backup name and its sidecars from st: the sidecars
// first, so a backup is never listed without the ciphertext it
// describes.
func Remove(ctx context.Context, st Store, name string) error {
	for _, n := range []string{name + SumSuffix, name + SummarySuffix, name} {
		if err := st.Delete(ctx, n); err != nil {
			return fmt.Errorf("backup: removing %s: %w", n, err)
		}
	}
	return nil
}
