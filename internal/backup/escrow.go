package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"
)

// An escrow is a copy of the key file (the KEK: every key id it holds)
// encrypted with age to recipients whose identities are kept offline,
// apart from the backups. It is what restores a backup after the live key
// file is lost, and the only thing that restores a backup older than a
// KEK epoch (whose old KEK key the epoch destroyed): so escrows must be
// written again after every epoch and the older ones destroyed, or
// erased patients come back from old backups with them (ADR 0015, 0048).
//
// Shamir k-of-n splitting is not offered: no small, maintained Go
// library for it was found, and this package does not implement it
// itself. Several recipients give 1-of-n; an organisation that needs
// k-of-n splits an identity with a tool made for that.

// escrowKind marks the plaintext of an escrow.
const escrowKind = "phivault-kek-escrow"

// maxEscrowBytes bounds the plaintext of an escrow (a key file is at most
// 1 MiB, base64 adds a third).
const maxEscrowBytes = 2 << 20

// ErrBadEscrow means decrypted bytes are not an escrow of this format.
var ErrBadEscrow = errors.New("backup: not a phivault key escrow")

// Escrow is the plaintext of an escrow file.
type Escrow struct {
	Kind    string    `json:"kind"`
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	KEKIDs  []uint32  `json:"kek_ids"`
	KeyFile []byte    `json:"key_file"` // the key file's bytes (base64 in JSON)
}

// WriteEscrow encrypts the key file's bytes (holding the ids kekIDs) to
// recipients and writes the escrow to w.
func WriteEscrow(w io.Writer, keyFile []byte, kekIDs []uint32, created time.Time, recipients Recipients) error {
	if len(recipients) == 0 {
		return ErrNoRecipient
	}
	b, err := json.Marshal(Escrow{Kind: escrowKind, Format: FormatVersion, Created: created.UTC(), KEKIDs: slices.Clone(kekIDs), KeyFile: keyFile})
	if err != nil {
		return fmt.Errorf("backup: escrow: %w", err)
	}
	ew, err := age.Encrypt(w, recipients...)
	if err != nil {
		return fmt.Errorf("backup: escrow: %w", err)
	}
	if _, err := ew.Write(b); err != nil {
		return fmt.Errorf("backup: escrow: %w", err)
	}
	if err := ew.Close(); err != nil {
		return fmt.Errorf("backup: escrow: %w", err)
	}
	return nil
}

// ReadEscrow decrypts an escrow with identities (ErrWrongIdentity when
// none matches) and parses it (ErrBadEscrow).
func ReadEscrow(r io.Reader, ids Identities) (Escrow, error) {
	pr, err := decrypt(io.LimitReader(r, 2*maxEscrowBytes), ids)
	if err != nil {
		return Escrow{}, err
	}
	b, err := io.ReadAll(io.LimitReader(pr, maxEscrowBytes+1))
	if err != nil {
		return Escrow{}, fmt.Errorf("%w: %v", ErrBadEscrow, err)
	}
	return ParseEscrow(b)
}

// ParseEscrow parses an escrow's plaintext; errors wrap ErrBadEscrow and
// never quote it (it is a key).
func ParseEscrow(b []byte) (Escrow, error) {
	if len(b) > maxEscrowBytes {
		return Escrow{}, fmt.Errorf("%w: larger than %d bytes", ErrBadEscrow, maxEscrowBytes)
	}
	var e Escrow
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		return Escrow{}, fmt.Errorf("%w: malformed", ErrBadEscrow)
	}
	if e.Kind != escrowKind || e.Format != FormatVersion {
		return Escrow{}, fmt.Errorf("%w: kind or format", ErrBadEscrow)
	}
	if len(e.KeyFile) == 0 || len(e.KEKIDs) == 0 {
		return Escrow{}, fmt.Errorf("%w: no key file or key ids", ErrBadEscrow)
	}
	return e, nil
}
