package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/phivault/phivault/internal/config"
)

// Errors that point to their fix: an untrusted server certificate names
// --cacert, bad JSON names the file, line and column, a missing data
// directory names "phivault init".

// demoDataDir is where "phivault demo" puts its data by default.
const demoDataDir = "./phivault-demo"

// tlsHint adds to a failed request's error what to do when the server's
// certificate did not verify: pass --cacert, with the CA of the data
// directory or the demo's if one is here. Other errors pass unchanged.
func (e *env) tlsHint(err error, flag string) error {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hn):
		return fmt.Errorf("%w\nThe server's certificate is not issued for that host name: use the host name it names (phivault's own certificate names localhost)", err)
	case errors.As(err, &ua), errors.As(err, &ci), errors.As(err, &cv):
	default:
		return err
	}
	hint := "pass " + flag + " <path> with the CA certificate that issued the server's certificate"
	var cas []string
	for _, p := range []string{filepath.Join(e.dataDir, "tls", "ca.crt"), filepath.Join(demoDataDir, "tls", "ca.crt")} {
		if fileExists(p) && (len(cas) == 0 || filepath.Clean(cas[0]) != filepath.Clean(p)) {
			cas = append(cas, p)
		}
	}
	switch len(cas) {
	case 1:
		hint += fmt.Sprintf(" (a phivault data directory keeps it in tls/ca.crt; here: %s %s)", flag, cas[0])
	case 2:
		hint += fmt.Sprintf(" (a phivault data directory keeps it in tls/ca.crt; here: %s %s, or the demo's: %s %s)", flag, cas[0], flag, cas[1])
	default:
		hint += " (a phivault data directory keeps it in tls/ca.crt)"
	}
	return fmt.Errorf("%w\nThe server's TLS certificate is not trusted: %s", err, hint)
}

// fileError is an error that names its file (and position) already.
type fileError struct{ msg string }

func (e *fileError) Error() string { return e.msg }

// jsonError names the file, line and column of a JSON decoding error
// in data (read from name); others pass with the file's name.
func jsonError(name string, data []byte, err error) error {
	return jsonErrorAt(name, data, err, 0, 0)
}

// jsonErrorAt is jsonError for data that starts at line line0+1, column
// col0+1 of the file (an NDJSON line).
func jsonErrorAt(name string, data []byte, err error, line0, col0 int) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var off int64
	var what string
	switch {
	case errors.As(err, &se):
		off, what = se.Offset, "invalid JSON: "+se.Error()
	case errors.As(err, &te):
		off, what = te.Offset, "unexpected JSON: a "+te.Value
		if te.Field != "" {
			what += " for " + te.Field
		}
		what += ", want " + te.Type.String()
	case errors.Is(err, io.ErrUnexpectedEOF):
		off, what = int64(len(data)), "invalid JSON: the file ends in the middle of a value"
	default:
		return &fileError{fmt.Sprintf("%s: %v", name, err)}
	}
	line, col := lineCol(data, off)
	if line == 1 {
		col += col0
	}
	return &fileError{fmt.Sprintf("%s:%d:%d: %s", name, line+line0, col, what)}
}

// lineCol turns a byte offset into a 1-based line and column (columns
// count bytes). Decoders report the offset after the byte at fault: the
// column is that byte's.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

// dataDirHint rewrites the error of a missing data directory: say how to
// create one.
func (e *env) dataDirHint(err error) error {
	if _, serr := os.Stat(e.dataDir); errors.Is(serr, os.ErrNotExist) {
		return fmt.Errorf("the data directory %s does not exist: create it with \"phivault init --data %s\" (or name another with --data; the default is %s)", e.dataDir, e.dataDir, config.DefaultDataDir)
	}
	return err
}
