package keys

import (
	"encoding/binary"

	"github.com/phivault/phivault/internal/ident"
)

// Domain strings: the first field of every associated data, so bytes bound
// for one use can never verify in another. The "/v1" lets the encoding
// change later without ambiguity.
const (
	domainKey      = "phivault/key/v1"      // wrapped keysets; + owner
	domainResource = "phivault/resource/v1" // resource bodies; + type, id, version, owner
	domainToken    = "phivault/token/v1"    // opaque tokens; + purpose
	domainAudit    = "phivault/audit/v1"    // audit event bodies; + context
	domainProbe    = "phivault/kek-probe/v1"
)

// ResourceAD is the context a resource ciphertext is bound to. Opening
// with any field different from sealing fails with [ErrDecrypt], so a
// stored body copied onto another resource, version or patient is
// rejected.
type ResourceAD struct {
	Type    string      // FHIR resource type, e.g. "Observation"
	ID      string      // logical id
	Version int64       // version number, 1, 2, ...
	Owner   ident.Owner // "Patient/<id>", "Joint/<h>" or "org": the owner of the DEK
}

// bytes encodes ad without ambiguity: no two different ResourceADs share
// an encoding, whatever bytes their strings hold.
func (ad ResourceAD) bytes() []byte {
	b := encodeAD(domainResource, ad.Type, ad.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(ad.Version))
	return appendField(b, string(ad.Owner))
}

// encodeAD returns the length-prefixed concatenation of fields.
func encodeAD(fields ...string) []byte {
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n+12) // room for a version and a short owner
	for _, f := range fields {
		b = appendField(b, f)
	}
	return b
}

// appendField appends a 4-byte big-endian length and the bytes of f.
// Fields longer than 4 GiB cannot occur (the inputs are ids and names).
func appendField(b []byte, f string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}
