package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry bundles (ADR 0014). Once integrated, events live in sealed
// entry bundles of BundleWidth leaves: the leaves with indexes
// [n*BundleWidth, n*BundleWidth+width), each prefixed by an unsigned
// varint of its length times two, plus one for a leaf sealed before the
// transparency log (format v1: the event bytes without a salt),
// encrypted as a whole with the log key. The seal
// context binds the bundle number and width, so a bundle cannot be moved
// to another place, and an older, narrower copy of the last bundle is
// a different (and detectably short) bundle. Sealing 256 leaves at once
// is what lets verification read and open about a million leaves a
// second: one row and one AEAD operation per 256 events.

// BundleWidth is the number of leaves in a full entry bundle: the width
// of a C2SP tile.
const BundleWidth = 256

// ErrBadBundle means a bundle opened with the log key but does not hold
// the leaves its place says: treat it as tampering.
var ErrBadBundle = errors.New("audit: malformed entry bundle")

const bundleContext = "phivault/audit-bundle/v1"

func bundleSealContext(n int64, width int) string {
	return fmt.Sprintf("%s n=%d w=%d", bundleContext, n, width)
}

// SealBundle seals leaves as entry bundle n; v1[i] marks leaf i as a
// format v1 leaf (v1 may be nil: none). It fails unless
// 1 <= len(leaves) <= BundleWidth.
func (l *Log) SealBundle(n int64, leaves [][]byte, v1 []bool) ([]byte, error) {
	if len(leaves) < 1 || len(leaves) > BundleWidth || n < 0 || (v1 != nil && len(v1) != len(leaves)) {
		return nil, fmt.Errorf("sealing entry bundle %d: %d leaves", n, len(leaves))
	}
	size := 0
	for _, lf := range leaves {
		size += binary.MaxVarintLen64 + len(lf)
	}
	pt := make([]byte, 0, size)
	for i, lf := range leaves {
		k := uint64(len(lf)) << 1
		if v1 != nil && v1[i] {
			k |= 1
		}
		pt = binary.AppendUvarint(pt, k)
		pt = append(pt, lf...)
	}
	ct, err := l.sealer.SealAudit(bundleSealContext(n, len(leaves)), pt)
	if err != nil {
		return nil, fmt.Errorf("sealing entry bundle %d: %w", n, err)
	}
	return ct, nil
}

// OpenBundle decrypts entry bundle n of width leaves and returns its
// leaves (slices of one buffer) and which are format v1 (nil: none). A
// bundle sealed for another number or width, or modified, does not open.
func (l *Log) OpenBundle(n int64, width int, sealed []byte) (leaves [][]byte, v1 []bool, err error) {
	pt, err := l.sealer.OpenAudit(bundleSealContext(n, width), sealed)
	if err != nil {
		return nil, nil, fmt.Errorf("opening entry bundle %d: %w", n, err)
	}
	leaves = make([][]byte, 0, width)
	for len(pt) > 0 {
		if len(leaves) == width {
			return nil, nil, fmt.Errorf("opening entry bundle %d: more than %d leaves: %w", n, width, ErrBadBundle)
		}
		k, m := binary.Uvarint(pt)
		if m <= 0 || k>>1 > uint64(len(pt)-m) {
			return nil, nil, fmt.Errorf("opening entry bundle %d: %w", n, ErrBadBundle)
		}
		if k&1 == 1 && v1 == nil {
			v1 = make([]bool, len(leaves), width)
		}
		if v1 != nil {
			v1 = append(v1, k&1 == 1)
		}
		pt = pt[m:]
		size := k >> 1
		leaves = append(leaves, pt[:size:size])
		pt = pt[size:]
	}
	if len(leaves) != width {
		return nil, nil, fmt.Errorf("opening entry bundle %d: %d leaves, want %d: %w", n, len(leaves), width, ErrBadBundle)
	}
	return leaves, v1, nil
}

// LeafEvent splits a leaf into its salt and the canonical event bytes;
// a v1 leaf has no salt (an empty one).
func LeafEvent(leaf []byte, v1 bool) (salt, event []byte, err error) {
	if v1 {
		return []byte{}, leaf, nil
	}
	return SplitLeaf(leaf)
}
