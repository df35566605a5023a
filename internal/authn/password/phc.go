package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are the argon2id cost parameters of one hash. They are stored in
// the PHC string beside the hash, so changing [DefaultParams] does not
// invalidate existing hashes: [Verify] reports needsRehash instead.
type Params struct {
	Memory  uint32 // KiB (RFC 9106 "m")
	Time    uint32 // passes (RFC 9106 "t")
	Threads uint8  // lanes (RFC 9106 "p")
}

// The default cost, as constants so no package state can be changed; see
// [DefaultParams] for the reasons.
const (
	DefaultMemory  = 19 * 1024 // KiB
	DefaultTime    = 2
	DefaultThreads = 1
)

// DefaultParams returns OWASP's first argon2id configuration (Password Storage
// Cheat Sheet: m=19 MiB, t=2, p=1), which is RFC 9106 §4's guidance to
// pick m for the machine and then the largest t the time budget allows.
//
// Why not RFC 9106 §4's second recommendation (m=64 MiB, t=3, p=4 or its
// common p=2 variant): the reference server has 2 cores that also serve
// HTTP. Lanes only speed up one login by occupying more cores, so p=1
// gives the most logins per second under load; 19 MiB per hash keeps the
// memory bound of a [Hasher] small (limit × m, 76 MiB at the default
// limit of 4) where 64 MiB would cost 256 MiB. Measured on the 2-core
// reference machine: see docs/adr/0006-passwords.md (BenchmarkVerifyDefault).
func DefaultParams() Params {
	return Params{Memory: DefaultMemory, Time: DefaultTime, Threads: DefaultThreads}
}

// Bounds on parameters read from stored hashes. A PHC string is data from
// the database; a corrupted or planted row must not make one login
// allocate gigabytes or run for minutes (STYLE rule 24).
const (
	// maxMemoryKiB is 1 GiB: RFC 9106's largest recommended m is 2 GiB for
	// dedicated machines; half of that is already more than this server
	// should spend on one login.
	maxMemoryKiB = 1 << 20
	// maxTime is 10 passes: above any published recommendation (RFC 9106
	// uses t=1 and t=3, OWASP t=1..5).
	maxTime = 10
	// maxThreads is 16 lanes: RFC 9106 recommends p=4 and argon2 allows
	// up to 2^24-1; more lanes than cores only adds overhead.
	maxThreads = 16
	// saltLen is 16 bytes: RFC 9106 §3.1 recommends 128 bits, enough for
	// salts never to repeat across all accounts of all deployments.
	saltLen = 16
	// keyLen is 32 bytes: RFC 9106 §4 recommends a 256-bit tag.
	keyLen = 32
	// minSaltLen and maxSaltLen bound salts read from storage (RFC 9106
	// requires at least 8 bytes; PHC allows up to 48 encoded characters).
	minSaltLen, maxSaltLen = 8, 48
	// minKeyLen and maxKeyLen bound hashes read from storage (PHC format:
	// at least 12 bytes; 64 is SHA-512 sized and above anything we write).
	minKeyLen, maxKeyLen = 16, 64
	// maxEncodedLen bounds the whole PHC string before any parsing.
	maxEncodedLen = 256
	// MaxPasswordBytes bounds the password before normalisation and
	// hashing. It is 4 × 128 runes of [MaxRunes] at their longest UTF-8
	// encoding, so every password [Check] accepts fits; longer input is
	// refused before it costs anything.
	MaxPasswordBytes = 4 * MaxRunes
)

// argon2Version is the only version we write or read: 0x13 (19), RFC 9106.
const argon2Version = argon2.Version

// kdfFunc is the signature of argon2.IDKey, a seam so tests can observe
// that every path (including the unknown-user path) runs the KDF.
type kdfFunc func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

// phc is a parsed "$argon2id$v=19$m=..,t=..,p=..$salt$hash" string.
type phc struct {
	params Params
	salt   []byte
	key    []byte
}

// validate reports whether p is within the bounds we write and read.
func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: t=%d is outside 1..%d", ErrInvalidParams, p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: p=%d is outside 1..%d", ErrInvalidParams, p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		// argon2 needs at least 8 KiB per lane.
		return fmt.Errorf("%w: m=%d is outside %d..%d", ErrInvalidParams, p.Memory, 8*uint32(p.Threads), maxMemoryKiB)
	}
	return nil
}

// Hash derives an argon2id hash of pw with p and a fresh 16-byte random
// salt, and returns it as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with unpadded standard base64, as the reference implementation writes.
// pw is normalised to NFKC first (NIST SP 800-63B §5.1.1.2), so the same
// password typed on different keyboards verifies. Hash runs the KDF with
// no concurrency limit: servers use [Hasher.Hash]. It returns
// [ErrInvalidParams] or [ErrTooLong]; the error never contains pw.
func Hash(pw string, p Params) (string, error) {
	return hashWith(argon2.IDKey, pw, p)
}

func hashWith(kdf kdfFunc, pw string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	if len(pw) > MaxPasswordBytes {
		return "", fmt.Errorf("hashing password: %w", ErrTooLong)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hashing password: reading salt: %w", err)
	}
	key := kdf(normalize(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return phc{params: p, salt: salt, key: key}.String(), nil
}

// Verify reports whether pw matches the PHC string encoded, comparing in
// constant time, and whether encoded should be replaced by a fresh hash
// because its parameters, salt or key length differ from [DefaultParams]()
// and this package's output (needsRehash is only meaningful when ok).
// It returns [ErrMalformed] for a string that is not an argon2id PHC
// string within bounds; a wrong password is ok == false with a nil error.
// Verify runs the KDF with no concurrency limit: servers use
// [Hasher.Verify], which also covers the unknown-user path.
func Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	return verifyWith(argon2.IDKey, DefaultParams(), pw, encoded)
}

func verifyWith(kdf kdfFunc, want Params, pw, encoded string) (ok, needsRehash bool, err error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verifying password: %w", err)
	}
	ok, needsRehash = verifyParsed(kdf, want, pw, h)
	return ok, needsRehash, nil
}

// verifyParsed is the one place a password is checked against a hash:
// real logins and the unknown-user path both end here.
func verifyParsed(kdf kdfFunc, want Params, pw string, h phc) (ok, needsRehash bool) {
	// An over-long password is run through the KDF truncated and then
	// refused, so the time taken does not depend on its length either.
	tooLong := len(pw) > MaxPasswordBytes
	if tooLong {
		pw = pw[:MaxPasswordBytes]
	}
	got := kdf(normalize(pw), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(got, h.key) != 1 || tooLong {
		return false, false
	}
	return true, h.params != want || len(h.salt) != saltLen || len(h.key) != keyLen
}

// normalize returns the NFKC form of pw as bytes (NIST SP 800-63B rev4
// §3.1.1.2: verifiers should normalise before hashing). Invalid UTF-8 is
// hashed as given; [Check] refuses it when the password is set.
func normalize(pw string) []byte {
	return norm.NFKC.Bytes([]byte(pw))
}

// String formats h as a PHC string.
func (h phc) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2Version, h.params.Memory, h.params.Time, h.params.Threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePHC parses an argon2id PHC string strictly: exact field order, no
// optional fields, decimal numbers without sign or leading zeros, strict
// unpadded base64, and every bound above. Anything else is [ErrMalformed]
// (or [ErrUnsupported] for another algorithm or version). Errors name the
// field, never the salt or hash.
func parsePHC(s string) (phc, error) {
	if len(s) > maxEncodedLen {
		return phc{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxEncodedLen)
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(s, "$")
	if len(f) < 2 || f[0] != "" {
		return phc{}, fmt.Errorf("%w: not a PHC string", ErrMalformed)
	}
	if f[1] != "argon2id" {
		return phc{}, fmt.Errorf("%w: algorithm is not argon2id", ErrUnsupported)
	}
	if len(f) != 6 {
		return phc{}, fmt.Errorf("%w: want 5 $-separated fields", ErrMalformed)
	}
	v, ok := strings.CutPrefix(f[2], "v=")
	if !ok {
		return phc{}, fmt.Errorf("%w: missing version", ErrMalformed)
	}
	if n, err := parseUint(v, 255); err != nil || n != argon2Version {
		return phc{}, fmt.Errorf("%w: version is not %d", ErrUnsupported, argon2Version)
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return phc{}, fmt.Errorf("%w: want parameters m,t,p", ErrMalformed)
	}
	var vals [3]uint64
	limits := [3]uint64{maxMemoryKiB, maxTime, maxThreads}
	for i, name := range []string{"m=", "t=", "p="} {
		raw, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return phc{}, fmt.Errorf("%w: want parameter %q at position %d", ErrMalformed, name[:1], i+1)
		}
		n, err := parseUint(raw, limits[i])
		if err != nil {
			return phc{}, fmt.Errorf("%w: parameter %s%w", ErrMalformed, name[:1], err)
		}
		vals[i] = n
	}
	p := Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := p.validate(); err != nil {
		return phc{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	salt, err := decodeB64(f[4], minSaltLen, maxSaltLen)
	if err != nil {
		return phc{}, fmt.Errorf("%w: salt %w", ErrMalformed, err)
	}
	key, err := decodeB64(f[5], minKeyLen, maxKeyLen)
	if err != nil {
		return phc{}, fmt.Errorf("%w: hash %w", ErrMalformed, err)
	}
	return phc{params: p, salt: salt, key: key}, nil
}

// parseUint parses a canonical decimal in 1..limit.
func parseUint(s string, limit uint64) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf(" is not a canonical decimal")
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf(" is not a canonical decimal")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1 || n > limit {
		return 0, fmt.Errorf(" is outside 1..%d", limit)
	}
	return n, nil
}

// decodeB64 decodes strict unpadded standard base64 of min..max bytes.
func decodeB64(s string, min, max int) ([]byte, error) {
	enc := base64.RawStdEncoding.Strict()
	if len(s) > enc.EncodedLen(max) {
		return nil, fmt.Errorf("is longer than %d bytes", max)
	}
	// The decoder skips \r and \n even in strict mode; a stored hash has
	// one spelling, so anything outside the alphabet is refused first.
	for i := range len(s) {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, fmt.Errorf("is not unpadded base64")
		}
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("is not unpadded base64")
	}
	if len(b) < min {
		return nil, fmt.Errorf("is shorter than %d bytes", min)
	}
	return b, nil
}
