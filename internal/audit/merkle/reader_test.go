package merkle_test

import (
	"errors"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// TestTileIndexOverflow: a tile number whose leaf index overflows int64
// is not found, rather than wrapping to another tile.
func TestTileIndexOverflow(t *testing.T) {
	c := newCrypt(t)
	d := openSQLite(t)
	c.appendEvents(t, d.st, 0, 10)
	if _, err := c.integrator(t, d.st).IntegrateAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := merkle.NewReader(d.st.TLog(), c.log)
	for _, p := range []string{"entries/x072/x057/x594/x037/x927/936", "entries/x036/x028/x797/x018/x963/968", "0/x072/x057/x594/x037/x927/936"} {
		tile, err := merkle.ParseTilePath(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var got error
		if tile.L < 0 {
			_, got = r.EntryBundle(t.Context(), tile)
		} else {
			_, got = r.Tile(t.Context(), tile)
		}
		if !errors.Is(got, merkle.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", p, got)
		}
	}
}
