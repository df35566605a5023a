package password

import (
	"bufio"
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// fastParams keep tests quick; the cost does not change the code paths.
var fastParams = Params{Memory: 256, Time: 1, Threads: 1}

type knownAnswer struct{ pw, phc string }

func readKnownAnswers(tb testing.TB) []knownAnswer {
	tb.Helper()
	var kas []knownAnswer
	for _, line := range readLines(tb, "testdata/phc-known-answers.txt") {
		pw, enc, ok := strings.Cut(line, "\t")
		if !ok {
			tb.Fatalf("known answer without a tab: %q", line)
		}
		kas = append(kas, knownAnswer{pw, enc})
	}
	if len(kas) == 0 {
		tb.Fatal("no known answers")
	}
	return kas
}

// readLines returns the lines of a testdata file, skipping blank lines
// and # comments; other lines are kept exactly (spaces matter).
func readLines(tb testing.TB, name string) []string {
	tb.Helper()
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}

func TestKnownAnswers(t *testing.T) {
	for _, ka := range readKnownAnswers(t) {
		t.Run(ka.phc, func(t *testing.T) {
			ok, _, err := Verify(ka.pw, ka.phc)
			if err != nil || !ok {
				t.Fatalf("Verify(%q) = %v, %v; want true", ka.pw, ok, err)
			}
			ok, _, err = Verify(ka.pw+"x", ka.phc)
			if err != nil || ok {
				t.Fatalf("Verify(wrong) = %v, %v; want false, nil", ok, err)
			}
			// Re-encoding the parsed string gives it back: we write
			// exactly the reference format.
			h, err := parsePHC(ka.phc)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.String(); got != ka.phc {
				t.Errorf("String() = %q; want %q", got, ka.phc)
			}
		})
	}
}

var phcFormat = regexp.MustCompile(`^\$argon2id\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		p    Params
	}{
		{"default params", "correct horse battery staple", DefaultParams()},
		{"fast params", "correct horse battery staple", fastParams},
		{"two lanes", "another long passphrase", Params{Memory: 64, Time: 2, Threads: 2}},
		{"unicode", "pâte à crêpes sans gluten", fastParams},
		{"empty", "", fastParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := Hash(tt.pw, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !phcFormat.MatchString(enc) {
				t.Fatalf("Hash = %q; not a PHC argon2id string with a 16-byte salt and 32-byte hash", enc)
			}
			h, err := parsePHC(enc)
			if err != nil {
				t.Fatal(err)
			}
			if h.params != tt.p {
				t.Errorf("stored params = %+v; want %+v", h.params, tt.p)
			}
			if want := argon2.IDKey([]byte(tt.pw), h.salt, tt.p.Time, tt.p.Memory, tt.p.Threads, keyLen); string(want) != string(h.key) {
				t.Error("stored hash is not argon2id(pw, salt, params)")
			}
			ok, _, err := verifyWith(argon2.IDKey, tt.p, tt.pw, enc)
			if err != nil || !ok {
				t.Fatalf("verify = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	a, err := Hash("same password twice", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Hash("same password twice", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	enc, err := Hash("Correct Horse Battery Staple", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{
		"", "correct horse battery staple", "Correct Horse Battery Staple ",
		"Correct Horse Battery Stapl", "Correct Horse Battery Staple\x00",
	} {
		ok, rehash, err := verifyWith(argon2.IDKey, fastParams, pw, enc)
		if err != nil || ok || rehash {
			t.Errorf("verify(%q) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
}

func TestVerifyNormalisesNFKC(t *testing.T) {
	tests := []struct{ name, set, login string }{
		{"composed vs decomposed", "caf\u00e9 au lait s'il vous pla\u00eet", "cafe\u0301 au lait s'il vous plai\u0302t"},
		{"ligature", "\ufb01nal \ufb01gures of the year", "final figures of the year"},
		{"full-width", "\uff30\uff21\uff33\uff33 phrase 2026", "PASS phrase 2026"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := Hash(tt.set, fastParams)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, err := verifyWith(argon2.IDKey, fastParams, tt.login, enc); !ok || err != nil {
				t.Errorf("equivalent input does not verify: %v, %v", ok, err)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	const pw = "a long enough passphrase"
	enc, err := Hash(pw, Params{Memory: 64, Time: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(enc, "$")
	flip := func(s string) string { // change the first base64 character
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	join := func(i int, v string) string {
		g := append([]string(nil), f...)
		g[i] = v
		return strings.Join(g, "$")
	}
	tests := []struct {
		name    string
		enc     string
		wantErr error // nil: parses, but must not verify
	}{
		{"memory", join(3, "m=72,t=2,p=2"), nil},
		{"time", join(3, "m=64,t=3,p=2"), nil},
		{"threads", join(3, "m=64,t=2,p=1"), nil},
		{"salt", join(4, flip(f[4])), nil},
		{"hash", join(5, flip(f[5])), nil},
		{"truncated hash", join(5, base64.RawStdEncoding.EncodeToString(mustB64(t, f[5])[:24])), nil},
		{"algorithm", join(1, "argon2i"), ErrUnsupported},
		{"version", join(2, "v=16"), ErrUnsupported},
		{"params order", join(3, "t=2,m=64,p=2"), ErrMalformed},
		{"huge memory", join(3, "m=2097152,t=2,p=2"), ErrMalformed},
		{"padding", join(5, f[5]+"="), ErrMalformed},
		{"extra field", enc + "$", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := Verify(pw, tt.enc)
			if ok {
				t.Fatal("tampered hash verifies")
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyNeedsRehash(t *testing.T) {
	enc, err := Hash("rehash me when costs rise", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want Params
		enc  string
		pw   string
		re   bool
	}{
		{"same params", fastParams, enc, "rehash me when costs rise", false},
		{"memory raised", Params{Memory: 512, Time: 1, Threads: 1}, enc, "rehash me when costs rise", true},
		{"time raised", Params{Memory: 256, Time: 2, Threads: 1}, enc, "rehash me when costs rise", true},
		{"threads changed", Params{Memory: 256, Time: 1, Threads: 2}, enc, "rehash me when costs rise", true},
		// Same params but an 8-byte salt: written by someone else.
		{"short salt", Params{Memory: 256, Time: 2, Threads: 1},
			"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, re, err := verifyWith(argon2.IDKey, tt.want, tt.pw, tt.enc)
			if !ok || err != nil {
				t.Fatalf("verify = %v, %v; want true", ok, err)
			}
			if re != tt.re {
				t.Errorf("needsRehash = %v; want %v", re, tt.re)
			}
		})
	}
}

func TestHashRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{}, {Memory: 256, Time: 0, Threads: 1}, {Memory: 256, Time: 11, Threads: 1},
		{Memory: 256, Time: 1, Threads: 0}, {Memory: 256, Time: 1, Threads: 17},
		{Memory: 15, Time: 1, Threads: 2}, {Memory: 1<<20 + 1, Time: 1, Threads: 1},
	} {
		if _, err := Hash("whatever passphrase", p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("Hash with %+v: err = %v; want ErrInvalidParams", p, err)
		}
	}
}

func TestPasswordLengthBound(t *testing.T) {
	long := strings.Repeat("a", MaxPasswordBytes)
	if _, err := Hash(long+"a", fastParams); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hash of %d bytes: err = %v; want ErrTooLong", MaxPasswordBytes+1, err)
	}
	enc, err := Hash(long, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := verifyWith(argon2.IDKey, fastParams, long, enc); !ok {
		t.Fatal("a password of exactly MaxPasswordBytes does not verify")
	}
	// Longer input with the same prefix is refused, not truncated into a match.
	if ok, _, _ := verifyWith(argon2.IDKey, fastParams, long+"b", enc); ok {
		t.Fatal("an over-long password verifies against its truncation")
	}
}

func TestParsePHCRejects(t *testing.T) {
	cases := append([]string{""}, readLines(t, "testdata/phc-invalid.txt")...)
	cases = append(cases, "$argon2id$v=19$m=256,t=2,p=1$"+strings.Repeat("A", 300)+"$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4")
	for _, s := range cases {
		t.Run(s, func(t *testing.T) {
			_, err := parsePHC(s)
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("parsePHC = %v; want ErrMalformed or ErrUnsupported", err)
			}
			// Errors name fields, never stored values.
			if f := strings.Split(s, "$"); len(f) == 6 {
				if len(f[4]) >= 8 && strings.Contains(err.Error(), f[4]) || len(f[5]) >= 8 && strings.Contains(err.Error(), f[5]) {
					t.Errorf("error %q contains the stored salt or hash", err)
				}
			}
		})
	}
}

// FuzzParsePHC: parsePHC reads stored data. It must not panic, must keep
// every bound, and what it accepts must be canonical (re-encodes to the
// same string), so one hash has one spelling.
func FuzzParsePHC(f *testing.F) {
	for _, ka := range readKnownAnswers(f) {
		f.Add(ka.phc)
	}
	for _, s := range readLines(f, "testdata/phc-invalid.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		p := h.params
		if p.Memory > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads || p.Memory < 8*uint32(p.Threads) {
			t.Fatalf("accepted params out of bounds: %+v", p)
		}
		if len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
			t.Fatalf("accepted salt %d or hash %d bytes", len(h.salt), len(h.key))
		}
		if got := h.String(); got != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, got)
		}
	})
}
