// Package keystest is an attacker's toolkit for tests of
// crypto-shredding (ADR 0015): given a stolen key file and the raw bytes
// of database files (main file, WAL, free pages, dead tuples), it finds
// every byte string shaped like a wrapped data key, tries to unwrap it
// with every key of the key file, and opens resource ciphertexts with
// what it recovered. It knows phivault's formats as an attacker reading
// the source would, and uses Tink directly rather than internal/keys, so
// a bug in internal/keys cannot hide a recovery. Linked by tests only.
package keystest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Attacker holds every key of a stolen key file.
type Attacker struct {
	kek tink.AEAD
	ids map[uint32]bool
}

// ReadKeyFile loads a key file (a cleartext Tink JSON keyset), whatever
// its mode: an attacker does not check permissions.
func ReadKeyFile(path string) (*Attacker, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("parsing key file: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	ids := map[uint32]bool{}
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return nil, err
		}
		ids[e.KeyID()] = true
	}
	return &Attacker{kek: a, ids: ids}, nil
}

// KeyIDs returns how many keys the stolen file holds.
func (a *Attacker) KeyIDs() int { return len(a.ids) }

// Candidates returns every byte string in data shaped like a Tink
// EncryptedKeyset as phivault stores wrapped keys: protobuf field 2
// (tag 0x12), a varint length, and that many bytes of AEAD ciphertext
// starting with Tink's output prefix (0x01 and a 4-byte key id), at
// least prefix + nonce + tag long. The keyset_info field that may follow
// is optional and left out. Overlapping and false candidates are fine:
// unwrapping them fails.
func Candidates(data []byte) [][]byte {
	const minCT = 5 + 12 + 16
	const maxCT = 64 << 10
	var out [][]byte
	for i := 0; i+2 < len(data); i++ {
		if data[i] != 0x12 {
			continue
		}
		n, w := binary.Uvarint(data[i+1 : min(len(data), i+4)])
		if w <= 0 || n < minCT || n > maxCT {
			continue
		}
		start := i + 1 + w
		end := start + int(n)
		if end > len(data) || data[start] != 0x01 {
			continue
		}
		out = append(out, data[i:end])
	}
	return out
}

// Unwrap tries to open a candidate as the wrapped data key of owner
// ("Patient/<id>") under every key of the file; it returns the data key.
func (a *Attacker) Unwrap(cand []byte, owner string) (tink.AEAD, bool) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(cand)), a.kek, field(nil, "phivault/key/v1", owner))
	if err != nil {
		return nil, false
	}
	d, err := aead.New(h)
	if err != nil {
		return nil, false
	}
	return d, true
}

// Open decrypts a stored resource version with a recovered data key.
func Open(dek tink.AEAD, ciphertext []byte, typ, id string, version int64, owner string) ([]byte, bool) {
	ad := field(nil, "phivault/resource/v1", typ, id)
	ad = binary.BigEndian.AppendUint64(ad, uint64(version))
	ad = field(ad, owner)
	pt, err := dek.Decrypt(ciphertext, ad)
	return pt, err == nil
}

// field appends each string as a 4-byte big-endian length and its bytes.
func field(b []byte, fs ...string) []byte {
	for _, f := range fs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}
