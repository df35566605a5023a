package merkle

import (
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of every tile: C2SP tlog-tiles fixes it at
// 8, so a full tile holds 256 hashes (8 KiB) or 256 entries.
const TileHeight = 8

// TileWidth is the number of hashes or entries in a full tile.
const TileWidth = 1 << TileHeight

// maxTilePath caps a tile path before parsing: the longest valid one
// ("entries/" plus seven x-groups and ".p/255") is under 60 bytes.
const maxTilePath = 96

// ParseTilePath parses a C2SP tlog-tiles path relative to "<prefix>/tile/":
// "<L>/<N>[.p/<W>]" for hash tiles and "entries/<N>[.p/<W>]" for entry
// bundles, with N in the x001/234 encoding. An entry bundle is returned
// with L = -1 (as tlog names data tiles). Errors wrap ErrBadRequest.
func ParseTilePath(p string) (tlog.Tile, error) {
	if len(p) > maxTilePath {
		return tlog.Tile{}, fmt.Errorf("%w: tile path too long", ErrBadRequest)
	}
	if strings.HasPrefix(p, "data/") {
		// tlog's own spelling of entry bundles; not part of C2SP.
		return tlog.Tile{}, fmt.Errorf("%w: malformed tile path", ErrBadRequest)
	}
	if rest, ok := strings.CutPrefix(p, "entries/"); ok {
		p = "data/" + rest
	}
	// tlog's parser handles the sumdb path "tile/<H>/<L>/<N>[.p/<W>]"
	// with the same N and .p/W encoding, and rejects every
	// non-canonical spelling (it re-formats and compares).
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s", TileHeight, p))
	if err != nil {
		return tlog.Tile{}, fmt.Errorf("%w: malformed tile path", ErrBadRequest)
	}
	if t.L > 8 {
		// 256^8 leaves exceed int64: no such tile can exist.
		return tlog.Tile{}, fmt.Errorf("%w: tile level %d out of range", ErrBadRequest, t.L)
	}
	return t, nil
}

// TilePath formats t (height TileHeight) as a C2SP path relative to
// "<prefix>/tile/". It is the inverse of ParseTilePath.
func TilePath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", t.H))
	if rest, ok := strings.CutPrefix(p, "data/"); ok {
		return "entries/" + rest
	}
	return p
}

// tileLeaves returns the number of leaves a tree must have for tile t
// to be complete at width t.W: level-L hashes cover 256^L leaves each.
// ok is false on overflow (no such tree).
func tileLeaves(t tlog.Tile) (int64, bool) {
	level := t.L
	if level < 0 {
		level = 0
	}
	if t.N < 0 || t.N > (int64(1)<<62)/TileWidth {
		return 0, false
	}
	end := t.N*TileWidth + int64(t.W)
	shift := uint(level * TileHeight)
	if shift >= 63 || end > (int64(1)<<62)>>shift {
		return 0, false
	}
	return end << shift, true
}
