package keys

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/phivault/phivault/internal/ident"
)

// Bulk export keys (ADR 0049). Each FHIR Bulk Data export job has a key
// of its own: a Tink AES-256-GCM keyset wrapped under the KEK and bound
// to "export/<job>", stored with the job. Its output files are sealed
// under it with associated data "phivault/export/v1" + job + file
// number, so a file copied onto another job or slot fails to open.
// Deleting or expiring the job destroys the wrapped key
// (crypto-shredding): the files' ciphertext, wherever a copy survives,
// no longer opens once the KEK keys that wrapped it are gone too.

// exportOwnerPrefix names the owner bound into a job key's wrap. It is
// not a DEK owner ([checkDEKOwner] refuses it), so a job key can never
// stand in for a patient's key or the reverse.
const exportOwnerPrefix = "export/"

// domainExport is the associated-data domain of export files.
const domainExport = "phivault/export/v1"

// maxExportJobLen bounds a job id bound into a key.
const maxExportJobLen = 64

// ExportKey seals and opens the output files of one export job. It is
// immutable and safe for concurrent use.
type ExportKey struct {
	_    noCompare
	job  string
	aead tink.AEAD
}

func exportOwner(job string) (ident.Owner, error) {
	if job == "" || len(job) > maxExportJobLen || strings.ContainsAny(job, "/\x00") {
		return "", fmt.Errorf("invalid export job id of %d bytes", len(job))
	}
	return ident.Owner(exportOwnerPrefix + job), nil
}

// NewExportKey creates the key of export job and returns it with its
// wrapped form (to store with the job).
func (k *Keyring) NewExportKey(job string) (*ExportKey, []byte, error) {
	owner, err := exportOwner(job)
	if err != nil {
		return nil, nil, fmt.Errorf("creating export key: %w", err)
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, nil, fmt.Errorf("creating export key: %w", err)
	}
	w, err := k.kek.Load().wrap(h, owner)
	if err != nil {
		return nil, nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, nil, fmt.Errorf("creating export key: %w", err)
	}
	return &ExportKey{job: job, aead: a}, w, nil
}

// ExportKey unwraps the key of export job. A nil wrapped key (destroyed)
// is [ErrShredded]; one that does not open for this job, [ErrDecrypt].
func (k *Keyring) ExportKey(job string, wrapped []byte) (*ExportKey, error) {
	owner, err := exportOwner(job)
	if err != nil {
		return nil, fmt.Errorf("opening export key: %w", err)
	}
	if len(wrapped) == 0 {
		return nil, fmt.Errorf("opening export key: %w", ErrShredded)
	}
	h, err := k.kek.Load().unwrap(wrapped, owner)
	if err != nil {
		return nil, err
	}
	if err := checkAES256GCM(h); err != nil {
		return nil, fmt.Errorf("opening export key: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("opening export key: %w", err)
	}
	return &ExportKey{job: job, aead: a}, nil
}

func (e *ExportKey) ad(file int) []byte {
	return encodeAD(domainExport, e.job, strconv.Itoa(file))
}

// Seal encrypts output file number file of the job.
func (e *ExportKey) Seal(file int, plaintext []byte) ([]byte, error) {
	ct, err := e.aead.Encrypt(plaintext, e.ad(file))
	if err != nil {
		return nil, fmt.Errorf("sealing export file %d: %w", file, err)
	}
	return ct, nil
}

// Open decrypts output file number file; any failure is exactly
// [ErrDecrypt].
func (e *ExportKey) Open(file int, ciphertext []byte) ([]byte, error) {
	pt, err := e.aead.Decrypt(ciphertext, e.ad(file))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// String redacts the key.
func (e *ExportKey) String() string { return "keys.ExportKey{" + e.job + "}" }

// GoString redacts the key.
func (e *ExportKey) GoString() string { return e.String() }

// LogValue redacts the key.
func (e *ExportKey) LogValue() slog.Value { return slog.StringValue(e.String()) }
