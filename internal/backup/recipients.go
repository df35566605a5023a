package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Backups and escrows are encrypted with age (age-encryption.org/v1):
// X25519 or hybrid post-quantum recipients, whose identities can be kept
// offline. age authenticates the content to whoever holds an identity,
// not who encrypted it: anyone with a recipient can make an archive, so
// a decrypted archive is still checked (manifest, hashes, signed
// checkpoint) before it is trusted.

// maxKeysFile bounds a recipients or identities file.
const maxKeysFile = 1 << 20

// ErrNoRecipient means no age recipient was given.
var ErrNoRecipient = errors.New("backup: no age recipient (--recipient age1... or --recipients-file)")

// ErrWrongIdentity means none of the identities given can decrypt the
// backup or escrow: the age stanzas are for other recipients.
var ErrWrongIdentity = errors.New("backup: none of the identities can decrypt it")

// Recipients are age recipients (X25519 or hybrid); Identities their
// secret counterparts. Named here so that callers need not import age.
type (
	Recipients []age.Recipient
	Identities []age.Identity
)

// ParseIdentities parses identities from text (AGE-SECRET-KEY-1..., one
// a line). The error never holds key material.
func ParseIdentities(text string) (Identities, error) {
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err != nil {
		return nil, errors.New("backup: not an age identity")
	}
	return ids, nil
}

// ParseRecipients parses recipients given as strings (age1..., one each)
// and recipients files (age's -R format: one a line, "#" comments).
// SSH keys, plugins and passphrases are refused.
func ParseRecipients(keys []string, files []string) (Recipients, error) {
	var out Recipients
	for _, k := range keys {
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil {
			return nil, fmt.Errorf("backup: recipient %.12s...: %w", k, err)
		}
		out = append(out, rs...)
	}
	for _, f := range files {
		b, err := readSmall(f)
		if err != nil {
			return nil, fmt.Errorf("backup: recipients file: %w", err)
		}
		rs, err := age.ParseRecipients(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("backup: recipients file %s: %w", f, err)
		}
		out = append(out, rs...)
	}
	if len(out) == 0 {
		return nil, ErrNoRecipient
	}
	return out, nil
}

// ParseIdentityFiles reads age identity files (AGE-SECRET-KEY-1...,
// one a line, "#" comments). The error never holds key material.
func ParseIdentityFiles(files ...string) (Identities, error) {
	var out Identities
	for _, f := range files {
		b, err := readSmall(f)
		if err != nil {
			return nil, fmt.Errorf("backup: identity file: %w", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("backup: identity file %s: not an age identity file", f)
		}
		out = append(out, ids...)
	}
	if len(out) == 0 {
		return nil, errors.New("backup: no age identity (--identity FILE)")
	}
	return out, nil
}

// decrypt opens an age stream; a stanza for nobody here is ErrWrongIdentity.
func decrypt(r io.Reader, ids Identities) (io.Reader, error) {
	pr, err := age.Decrypt(r, ids...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) || errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, ErrWrongIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not an age file or damaged header: %v", ErrCorrupt, err)
	}
	return pr, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeysFile)
	}
	return b, nil
}
