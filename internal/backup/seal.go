package backup

import (
	"errors"
	"fmt"
)

// Manifest authentication (ADR 0048, "who made this backup"). age
// authenticates the content to the identity holder, not who encrypted
// it: anyone holding a backup identity can decrypt a real backup, plant
// a policy or a configuration key, recompute the manifest's hashes and
// encrypt again to the public recipient. So the manifest, which hashes
// every other entry, is sealed with the deployment's KEK (the archive's
// entry sealName, right after the manifest), and restore, drill and
// verify with a key file refuse an archive whose seal does not check
// with the operator's key file.

// sealName is the entry after the manifest: the KEK's seal of the
// SHA-256 of the manifest's bytes.
const sealName = "manifest.seal"

// maxSealBytes bounds the seal entry (keys caps it at 4 KiB too).
const maxSealBytes = 4 << 10

// ManifestSealer seals a manifest digest under the deployment's KEK
// (*keys.KEK).
type ManifestSealer interface {
	SealBackupManifest(digest []byte) ([]byte, error)
}

// ManifestChecker checks a seal of a manifest digest (*keys.KEK); it
// returns an error when the seal was not made with its KEK for digest.
type ManifestChecker interface {
	CheckBackupManifest(seal, digest []byte) error
}

// ErrUnauthenticated means a backup's manifest is not sealed with the
// key file's KEK: made by someone without it (anyone holding a
// recipient can make an archive), by another deployment, or before
// backups were sealed. Nothing of it is restored.
var ErrUnauthenticated = errors.New("backup: the manifest is not authenticated by this key file's KEK")

// ErrNoSealer means Create was given no KEK to seal the manifest with.
var ErrNoSealer = errors.New("backup: creating a backup needs the KEK (the key file) to seal its manifest")

// checkSeal checks the archive's seal with c.
func checkSeal(c ManifestChecker, a archived) error {
	if a.seal == nil {
		return fmt.Errorf("%w: the archive has no seal (made by an older phivault or by someone without the KEK)", ErrUnauthenticated)
	}
	if err := c.CheckBackupManifest(a.seal, a.digest[:]); err != nil {
		return fmt.Errorf("%w: the seal does not check (made by someone without this KEK, or with a key destroyed since)", ErrUnauthenticated)
	}
	return nil
}
