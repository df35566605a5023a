package recovery

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

const (
	// Count is how many codes a user gets: 10, the usual set size
	// (GitHub, Google), enough for years of rare use.
	Count = 10

	// codeBytes is the entropy per code: 80 bits, out of reach of online
	// guessing (rate limited) and of offline search of a leaked hash
	// (2^79 SHA-256 on average), while still 16 characters to type.
	codeBytes = 10

	// codeChars is the length of a normalised code: 80 bits / 5 bits per
	// Crockford character.
	codeChars = 16

	// groupLen is the display group size: 4-4-4-4 is easy to read aloud
	// and to copy from paper.
	groupLen = 4

	// MaxInput caps the untrusted input [Match] looks at (rule 24):
	// sixteen characters plus any reasonable separators and padding.
	MaxInput = 64

	// hashPrefix separates these hashes from any other SHA-256 we store
	// (API tokens, fingerprints), so a value from one table never matches
	// in another.
	hashPrefix = "phivault recovery code v1\x00"
)

// alphabet is Douglas Crockford's base32: digits and letters without
// I, L, O and U.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var crockford = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// ErrDuplicate is returned by [GenerateFrom] when the random source
// repeated itself within one set of codes: a broken source (with
// crypto/rand the chance is about 2^-74). Do not retry with the same
// source; report it.
var ErrDuplicate = errors.New("recovery: random source produced duplicate codes")

// Code is one recovery code. It is opaque and redacts itself when
// printed, logged or marshalled; [Code.Reveal] returns its text for the
// one-time display. The zero Code reveals "".
type Code struct {
	norm string // 16 Crockford characters, no separators
}

// Reveal returns the code as the user should see it: "XXXX-XXXX-XXXX-XXXX".
func (c Code) Reveal() string {
	if c.norm == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(c.norm); i += groupLen {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(c.norm[i : i+groupLen])
	}
	return b.String()
}

// String redacts the code.
func (Code) String() string { return "recovery.Code([redacted])" }

// GoString redacts the code under %#v.
func (Code) GoString() string { return "recovery.Code([redacted])" }

// LogValue redacts the code in log/slog output.
func (Code) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON redacts the code.
func (Code) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

var _ slog.LogValuer = Code{}

// Generate returns [Count] new codes from crypto/rand and, index for
// index, the SHA-256 hashes to store. See [GenerateFrom].
func Generate() (codes []Code, hashes [][]byte, err error) {
	return GenerateFrom(rand.Reader)
}

// GenerateFrom is [Generate] reading randomness from r (tests inject a
// reader). It returns r's error, or [ErrDuplicate] if two codes are equal.
// Show the codes once and store only the hashes; a new set replaces the
// whole old set.
func GenerateFrom(r io.Reader) (codes []Code, hashes [][]byte, err error) {
	buf := make([]byte, Count*codeBytes)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, nil, fmt.Errorf("generating recovery codes: reading randomness: %w", err)
	}
	codes = make([]Code, Count)
	hashes = make([][]byte, Count)
	seen := make(map[string]bool, Count)
	for i := range codes {
		norm := crockford.EncodeToString(buf[i*codeBytes : (i+1)*codeBytes])
		if seen[norm] {
			return nil, nil, fmt.Errorf("generating recovery codes: %w", ErrDuplicate)
		}
		seen[norm] = true
		codes[i] = Code{norm: norm}
		hashes[i] = hash(norm)
	}
	return codes, hashes, nil
}

// hash is the stored form of a normalised code.
func hash(norm string) []byte {
	h := sha256.New()
	h.Write([]byte(hashPrefix))
	h.Write([]byte(norm))
	return h.Sum(nil)
}

// normalise turns what a user typed into the canonical sixteen
// characters: upper case, dashes and spaces dropped, I and L read as 1
// and O as 0. It reports false for anything longer than [MaxInput], any
// other character (U included: Crockford reserves it), or a length other
// than sixteen.
func normalise(input string) (string, bool) {
	if len(input) > MaxInput {
		return "", false
	}
	out := make([]byte, 0, codeChars)
	for i := 0; i < len(input); i++ {
		c := input[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch c {
		case '-', ' ':
			continue
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if strings.IndexByte(alphabet, c) < 0 || len(out) == codeChars {
			return "", false
		}
		out = append(out, c)
	}
	if len(out) != codeChars {
		return "", false
	}
	return string(out), true
}

// Match reports which of the stored hashes the user's input is a code for.
// It normalises input (see the package doc), hashes it, and compares the
// result with every hash in constant time, without stopping early. On
// success the caller must delete hashes[index] before answering (single
// use). Malformed input, no match, or no hashes returns (-1, false); so
// does a nil or malformed stored hash at that position. Safe for
// concurrent use; hashes is only read.
func Match(input string, hashes [][]byte) (index int, ok bool) {
	norm, valid := normalise(input)
	if !valid {
		return -1, false
	}
	h := hash(norm)
	index = -1
	found := 0
	for i, stored := range hashes {
		eq := subtle.ConstantTimeCompare(h, stored)
		index = subtle.ConstantTimeSelect(eq, i, index)
		found |= eq
	}
	return index, found == 1
}
