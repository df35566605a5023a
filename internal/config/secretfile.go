package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readSecretFile reads a secret (a token, a client secret) from path,
// named by the option opt in errors: the file must be readable by its
// owner only and at most maxSecretFile bytes; surrounding space is
// trimmed.
func readSecretFile(opt, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, opt, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, opt, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s: mode %04o; the file must not be readable by group or others (chmod 600)", ErrInvalid, opt, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil || len(b) > maxSecretFile {
		return "", fmt.Errorf("%w: %s: unreadable or larger than %d bytes", ErrInvalid, opt, maxSecretFile)
	}
	return strings.TrimSpace(string(b)), nil
}
