package keys

import (
	"crypto/subtle"
	"fmt"
)

// domainBackupManifest separates backup manifest seals from every other
// use of the KEK (wrapped keysets use domainKey): a seal can never be
// taken for a wrapped key, nor a wrapped key for a seal.
const domainBackupManifest = "phivault/backup-manifest/v1"

// backupDigestSize is the size of the digest a seal covers (SHA-256).
const backupDigestSize = 32

// maxBackupSealSize caps a seal read from an archive: a Tink AEAD
// ciphertext of a 32-byte digest is 65 bytes with a key file, a little
// more from a KMS; 4 KiB bounds parsing of attacker-made input.
const maxBackupSealSize = 4 << 10

// SealBackupManifest authenticates the SHA-256 digest of a backup
// manifest under the KEK: it is the KEK's AEAD (AES-256-GCM, or the
// KMS's) encryption of digest with the digest and the purpose as
// associated data. Why the KEK: age authenticates nothing about who
// encrypted a backup, and only the deployment's KEK holder can make a
// seal that [KEK.CheckBackupManifest] accepts, with the same key file (or
// an escrow of it) that a restore needs anyway; no key row in the backup
// (which an attacker could swap) is involved.
func (k *KEK) SealBackupManifest(digest []byte) ([]byte, error) {
	if len(digest) != backupDigestSize {
		return nil, fmt.Errorf("sealing backup manifest: digest of %d bytes, want %d", len(digest), backupDigestSize)
	}
	seal, err := k.aead.Encrypt(digest, encodeAD(domainBackupManifest, string(digest)))
	if err != nil {
		return nil, fmt.Errorf("sealing backup manifest: %w", err)
	}
	return seal, nil
}

// CheckBackupManifest checks a seal made by [KEK.SealBackupManifest] for
// digest. Any failure (another KEK, a destroyed KEK key, another digest,
// a damaged seal) returns an error wrapping [ErrDecrypt].
func (k *KEK) CheckBackupManifest(seal, digest []byte) error {
	if len(seal) > maxBackupSealSize || len(digest) != backupDigestSize {
		return fmt.Errorf("checking backup manifest seal: %w", ErrDecrypt)
	}
	pt, err := k.aead.Decrypt(seal, encodeAD(domainBackupManifest, string(digest)))
	if err != nil || subtle.ConstantTimeCompare(pt, digest) != 1 {
		return fmt.Errorf("checking backup manifest seal: %w", ErrDecrypt)
	}
	return nil
}
