package merkle

import (
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxCheckpointSize caps a checkpoint read from a remote log: the body
// is three short lines and each signature line under 200 bytes, so 16
// KiB leaves room for many witness cosignatures and bounds the work of
// a hostile server.
const MaxCheckpointSize = 16 << 10

// Checkpoint is a parsed, signature-checked tree head.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Note   []byte // the signed note as published
}

// SignCheckpoint returns the C2SP tlog-checkpoint signed note for the
// tree of size leaves with the given root.
func SignCheckpoint(origin string, size int64, root tlog.Hash, s note.Signer) ([]byte, error) {
	text := log.Checkpoint{Origin: origin, Size: uint64(size), Hash: root[:]}.Marshal()
	msg, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint of size %d: %w", size, err)
	}
	return msg, nil
}

// OpenCheckpoint parses a signed checkpoint, checks that its origin is
// origin and that v signed it. Errors wrap ErrSignature for a bad or
// missing signature, a wrong origin or malformed text, and ErrBadRequest
// for an oversized input. It never panics on any input.
func OpenCheckpoint(raw []byte, origin string, v note.Verifier) (Checkpoint, error) {
	if len(raw) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint larger than %d bytes", ErrBadRequest, MaxCheckpointSize)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, origin, v)
	if err != nil {
		// A malformed note, an unknown or wrong key, a bad signature and
		// a wrong origin all mean the same to a verifier: this is not a
		// checkpoint of our log.
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if len(cp.Hash) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root hash has %d bytes, want %d", ErrBadRequest, len(cp.Hash), tlog.HashSize)
	}
	if cp.Size > 1<<62 {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint size %d out of range", ErrBadRequest, cp.Size)
	}
	c := Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Note: raw}
	copy(c.Root[:], cp.Hash)
	return c, nil
}

// NewVerifier parses a note verifier key, "<name>+<hash>+<base64 key>"
// (as "phivault audit pubkey" prints). Errors wrap ErrBadRequest and
// never echo more than the key's name.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrBadRequest, err)
	}
	return v, nil
}
