package backup

import (
	"errors"
	"fmt"
	"io"
)

// Decompression limits. An archive is attacker-made input (anyone
// holding a recipient can encrypt to it), and zstd expands a few KiB of
// repeated bytes into gigabytes: a restore or verify writing that to a
// temporary file fills the disk before the manifest (the last entry)
// could say anything. So the decompressed stream is capped against the
// ciphertext's size, and every entry's announced size is checked against
// what is left before a byte of it is written.
const (
	// DefaultMaxExpansion is the default ratio of decompressed to
	// ciphertext bytes. A phivault snapshot is mostly encrypted resource
	// bodies (incompressible) plus SQLite pages and indexes: real
	// backups expand 1.5 to 10 times; 100 leaves a wide margin while
	// refusing a bomb (the tester's: 30,000 times).
	DefaultMaxExpansion = 100
	// minExpansionBudget is the least any archive may expand to, so that
	// a near-empty database (a few KiB compressed, megabytes of empty
	// pages) always restores.
	minExpansionBudget = 256 << 20
	// DefaultMaxExpanded is the absolute cap on an archive's
	// decompressed bytes: 4 TiB, beyond any single phivault database.
	DefaultMaxExpanded = 4 << 40
)

// ErrTooLarge means an archive decompresses to more than its limit (a
// decompression bomb, or a limit set too low): nothing was kept and the
// temporary files are removed. The message says the limit and how to
// raise it.
var ErrTooLarge = errors.New("backup: the archive expands beyond its limit")

// Limits bound what reading an archive may decompress. The zero value
// means the defaults.
type Limits struct {
	// MaxExpansion is the largest ratio of decompressed to ciphertext
	// bytes (default DefaultMaxExpansion).
	MaxExpansion int64
	// MaxBytes is the absolute cap (default DefaultMaxExpanded).
	MaxBytes int64
}

// budget returns the decompressed bytes allowed for a ciphertext of
// size bytes (-1: unknown, then the absolute cap).
func (l Limits) budget(size int64) int64 {
	ratio, most := l.MaxExpansion, l.MaxBytes
	if ratio <= 0 {
		ratio = DefaultMaxExpansion
	}
	if most <= 0 {
		most = DefaultMaxExpanded
	}
	if size < 0 || size > most/ratio {
		return most
	}
	return min(most, max(minExpansionBudget, size*ratio))
}

// capReader fails with ErrTooLarge once more than budget bytes were read.
type capReader struct {
	r            io.Reader
	left, budget int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a stream that ends exactly at the budget
		// from one that goes on.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		return 0, fmt.Errorf("%w: it decompresses to more than %d bytes (a decompression bomb? the limit is a multiple of the ciphertext's size, --max-expansion)", ErrTooLarge, c.budget)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
