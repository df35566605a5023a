package httpapi_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/apitest"
)

// The verifying side of this file uses only golang.org/x/mod/sumdb/tlog
// and sumdb/note (and the standard library): it is what an outside
// auditor with standard tools does against /log. apitest only starts
// the server and creates credentials.

// checkpoint is a verified C2SP checkpoint, parsed by hand.
type checkpoint struct {
	origin string
	tree   tlog.Tree
	raw    []byte
}

func openCheckpoint(t *testing.T, raw []byte, v note.Verifier) checkpoint {
	t.Helper()
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, raw)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		t.Fatalf("checkpoint text %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	if lines[0] != v.Name() {
		t.Fatalf("origin %q, key name %q", lines[0], v.Name())
	}
	return checkpoint{origin: lines[0], tree: tlog.Tree{N: size, Hash: root}, raw: raw}
}

// httpTiles reads C2SP tiles: tile/<L>/<N>[.p/<W>] (tlog's own paths
// carry the height, "tile/8/...").
type httpTiles struct {
	t *testing.T
	s *apitest.Server
}

func (h httpTiles) Height() int { return 8 }

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		path := "/log/" + strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
		r, err := h.s.Send(h.t.Context(), "GET", path, nil, apitest.H{"Authorization": apitest.NoAuth})
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d", path, r.Status)
		}
		out[i] = r.Body
	}
	return out, nil
}

func (httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func TestLogVerifiesWithStandardTools(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		v, err := note.NewVerifier(s.App.Transparency().VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		public := apitest.H{"Authorization": apitest.NoAuth}
		// waitFor polls the public checkpoint until it covers n leaves:
		// the integrator signs within about a second of the append.
		waitFor := func(n int64) checkpoint {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := s.Do(t, "GET", "/log/checkpoint", nil, public).Want(t, http.StatusOK)
				if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
					t.Errorf("checkpoint Cache-Control %q", cc)
				}
				c := openCheckpoint(t, r.Body, v)
				if c.tree.N >= n {
					return c
				}
				if time.Now().After(deadline) {
					t.Fatalf("checkpoint stuck at size %d, want %d", c.tree.N, n)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		first := waitFor(1) // the token creation is audited
		for i := range 300 {
			s.Create(t, map[string]any{"resourceType": "Patient", "id": fmt.Sprintf("p%d", i), "gender": "female"})
		}
		last := waitFor(first.tree.N + 300)

		// The tiles prove the root.
		thr := tlog.TileHashReader(last.tree, httpTiles{t, s})
		root, err := tlog.TreeHash(last.tree.N, thr)
		if err != nil || root != last.tree.Hash {
			t.Fatalf("tree hash from tiles: %v %v", root, err)
		}
		// A full tile is immutable and cacheable.
		r := s.Do(t, "GET", "/log/tile/0/000", nil, public).Want(t, http.StatusOK)
		if len(r.Body) != 256*32 || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("full tile: %d bytes, Cache-Control %q", len(r.Body), r.Header.Get("Cache-Control"))
		}

		// Inclusion proofs in the C2SP tlog-proof format, for the first
		// and last leaves, against a checkpoint embedded in the proof.
		for _, idx := range []int64{0, 200, last.tree.N - 1} {
			r := s.Do(t, "GET", fmt.Sprintf("/log/proof/inclusion?index=%d&size=%d", idx, last.tree.N), nil, public).Want(t, http.StatusOK)
			head, cp, ok := bytes.Cut(r.Body, []byte("\n\n"))
			lines := strings.Split(string(head), "\n")
			if !ok || lines[0] != "c2sp.org/tlog-proof@v1" || lines[1] != fmt.Sprintf("index %d", idx) {
				t.Fatalf("proof %q", r.Body)
			}
			var proof tlog.RecordProof
			for _, l := range lines[2:] {
				h, err := tlog.ParseHash(l)
				if err != nil {
					t.Fatal(err)
				}
				proof = append(proof, h)
			}
			c := openCheckpoint(t, cp, v)
			leaf, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(proof, c.tree.N, c.tree.Hash, idx, leaf[0]); err != nil {
				t.Errorf("inclusion of leaf %d: %v", idx, err)
			}
		}

		// Consistency between the first checkpoint and the last.
		r = s.Do(t, "GET", fmt.Sprintf("/log/proof/consistency?old=%d&new=%d", first.tree.N, last.tree.N), nil, public).Want(t, http.StatusOK)
		var tp tlog.TreeProof
		for _, l := range strings.Fields(string(r.Body)) {
			h, err := tlog.ParseHash(l)
			if err != nil {
				t.Fatal(err)
			}
			tp = append(tp, h)
		}
		if err := tlog.CheckTree(tp, last.tree.N, last.tree.Hash, first.tree.N, first.tree.Hash); err != nil {
			t.Errorf("consistency %d..%d: %v", first.tree.N, last.tree.N, err)
		}

		// Entry bundles: auditors only. Their leaves hash to the tile.
		path := "/log/tile/entries/000"
		if last.tree.N < 256 {
			path += fmt.Sprintf(".p/%d", last.tree.N)
		}
		s.Do(t, "GET", path, nil, public).Want(t, http.StatusUnauthorized)
		s.Do(t, "GET", path, nil, nil).Want(t, http.StatusForbidden) // the system token
		aud, err := s.App.Tokens().Create(t.Context(), "auditor", []string{"auditor"})
		if err != nil {
			t.Fatal(err)
		}
		r = s.Do(t, "GET", path, nil, apitest.H{"Authorization": "Bearer " + aud.Reveal()}).Want(t, http.StatusOK)
		if cc := r.Header.Get("Cache-Control"); strings.Contains(cc, "public") {
			t.Errorf("entry bundle is cacheable by shared caches: %q", cc)
		}
		b := r.Body
		for i := int64(0); len(b) > 0; i++ {
			n := int(binary.BigEndian.Uint16(b))
			entry := b[2 : 2+n]
			b = b[2+n:]
			want, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
			if err != nil {
				t.Fatal(err)
			}
			if tlog.RecordHash(entry) != want[0] {
				t.Fatalf("entry %d does not hash to its tile entry", i)
			}
			// The leaf is a 16-byte salt, then the event's JSON.
			if len(entry) < 17 || entry[16] != '{' {
				t.Fatalf("entry %d is not salt+event: %q", i, entry)
			}
		}

		// Bad input gets a clear 400; beyond the tree a 404.
		for _, p := range []string{"/log/proof/inclusion?index=-1", "/log/proof/inclusion?index=5&size=3", "/log/proof/consistency?old=0&new=3", "/log/tile/0/00", "/log/tile/0/000.p/256"} {
			s.Do(t, "GET", p, nil, public).Want(t, http.StatusBadRequest)
		}
		s.Do(t, "GET", "/log/tile/3/000", nil, public).Want(t, http.StatusNotFound)
		s.Do(t, "GET", fmt.Sprintf("/log/proof/inclusion?index=0&size=%d", last.tree.N+1000), nil, public).Want(t, http.StatusNotFound)
	})
}
