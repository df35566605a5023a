package recovery

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
)

var display = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)

func TestGenerate(t *testing.T) {
	codes, hashes, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != Count || len(hashes) != Count {
		t.Fatalf("got %d codes, %d hashes; want %d each", len(codes), len(hashes), Count)
	}
	seen := map[string]bool{}
	for i, c := range codes {
		shown := c.Reveal()
		if !display.MatchString(shown) {
			t.Errorf("code %d = %q, want XXXX-XXXX-XXXX-XXXX in Crockford base32", i, shown)
		}
		if seen[shown] {
			t.Errorf("code %d repeats", i)
		}
		seen[shown] = true
		if len(hashes[i]) != 32 {
			t.Errorf("hash %d is %d bytes, want 32", i, len(hashes[i]))
		}
		if bytes.Contains(hashes[i], []byte(strings.ReplaceAll(shown, "-", ""))) {
			t.Errorf("hash %d contains the code", i)
		}
		// Every code matches its own hash, and only that one.
		if idx, ok := Match(shown, hashes); !ok || idx != i {
			t.Errorf("Match(code %d) = (%d, %v), want (%d, true)", i, idx, ok, i)
		}
	}
}

func TestGenerateFromKnownBytes(t *testing.T) {
	// Code i is ten bytes of i*0x11; 80 bits split into 5-bit Crockford
	// digits by hand: 0x11 -> 00010 00100 01000 10001 -> "248H".
	var src bytes.Buffer
	for i := range Count {
		src.Write(bytes.Repeat([]byte{byte(i * 0x11)}, codeBytes))
	}
	codes, hashes, err := GenerateFrom(&src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		i    int
		want string
	}{
		{0, "0000-0000-0000-0000"},
		{1, "248H-248H-248H-248H"},
		{9, "K6CS-K6CS-K6CS-K6CS"}, // 0x99 -> 10011 00110 01100 11001
	}
	for _, tc := range tests {
		if got := codes[tc.i].Reveal(); got != tc.want {
			t.Errorf("code %d = %s, want %s", tc.i, got, tc.want)
		}
	}
	if idx, ok := Match("0000 0000 0000 0000", hashes); !ok || idx != 0 {
		t.Errorf("Match = (%d, %v), want (0, true)", idx, ok)
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, _, err := GenerateFrom(io.LimitReader(bytes.NewReader(make([]byte, 100)), 99)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: err = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, _, err := GenerateFrom(bytes.NewReader(make([]byte, 100))); !errors.Is(err, ErrDuplicate) {
		t.Errorf("all-zero reader: err = %v, want ErrDuplicate", err)
	}
}

func TestMatch(t *testing.T) {
	// A code with every look-alike digit, as Generate would show it.
	const code = "10AB-CD1E-0FGH-JK01"
	other := "ZZZZ-YYYY-XXXX-WWWW"
	hashes := [][]byte{hash("ZZZZYYYYXXXXWWWW"), hash("10ABCD1E0FGHJK01"), hash("2222333344445555")}
	tests := []struct {
		name    string
		input   string
		hashes  [][]byte
		wantIdx int
		wantOK  bool
	}{
		{"as displayed", code, hashes, 1, true},
		{"first", other, hashes, 0, true},
		{"lower case", strings.ToLower(code), hashes, 1, true},
		{"no dashes", "10ABCD1E0FGHJK01", hashes, 1, true},
		{"spaces", "10AB CD1E 0FGH JK01", hashes, 1, true},
		{"surrounding spaces", "  10ab-cd1e-0fgh-jk01 ", hashes, 1, true},
		{"I and L for 1, O for 0", "lOAB-CDiE-OFGH-JKOI", hashes, 1, true},
		{"misplaced dashes", "1-0-A-B-C-D-1-E-0-F-G-H-J-K-0-1", hashes, 1, true},
		{"one wrong character", "10AB-CD1E-0FGH-JK02", hashes, -1, false},
		{"U is not Crockford", "10AB-CD1E-0FGH-JKU1", hashes, -1, false},
		{"fifteen characters", "10AB-CD1E-0FGH-JK0", hashes, -1, false},
		{"seventeen characters", "10AB-CD1E-0FGH-JK011", hashes, -1, false},
		{"tab", "10AB\tCD1E0FGHJK01", hashes, -1, false},
		{"underscore", "10AB_CD1E_0FGH_JK01", hashes, -1, false},
		{"non-ASCII look-alike", "1OAB-CD1E-0FGH-JKØ1", hashes, -1, false},
		{"dotless i", "ıOAB-CD1E-0FGH-JK01", hashes, -1, false},
		{"over MaxInput", code + strings.Repeat(" ", MaxInput), hashes, -1, false},
		{"empty", "", hashes, -1, false},
		{"no hashes", code, nil, -1, false},
		{"used hash deleted", code, [][]byte{hashes[0], hashes[2]}, -1, false},
		{"nil and short stored hashes", code, [][]byte{nil, {1, 2}, hashes[1]}, 2, true},
		{"unprefixed sha256 is not accepted", code, [][]byte{rawSHA256("10ABCD1E0FGHJK01")}, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, ok := Match(tc.input, tc.hashes)
			if idx != tc.wantIdx || ok != tc.wantOK {
				t.Errorf("Match(%q) = (%d, %v), want (%d, %v)", tc.input, idx, ok, tc.wantIdx, tc.wantOK)
			}
		})
	}
}

// TestSingleUse plays the caller: a used hash is deleted, so the code
// then fails while the others still work.
func TestSingleUse(t *testing.T) {
	codes, hashes, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	idx, ok := Match(codes[3].Reveal(), hashes)
	if !ok || idx != 3 {
		t.Fatalf("first use = (%d, %v)", idx, ok)
	}
	hashes = append(hashes[:idx], hashes[idx+1:]...)
	if _, ok := Match(codes[3].Reveal(), hashes); ok {
		t.Fatal("used code accepted again")
	}
	if _, ok := Match(codes[4].Reveal(), hashes); !ok {
		t.Fatal("unused code refused after another was used")
	}
}

func TestCodeRedacts(t *testing.T) {
	codes, _, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	c := codes[0]
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("issued", "code", c, "codes", codes)
	js, err := json.Marshal(codes)
	if err != nil {
		t.Fatal(err)
	}
	secret := c.Reveal()[:4] + c.Reveal()[5:9] // any long-enough fragment
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", codes),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", c),
		"slog": logged.String(),
		"json": string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, c.Reveal()) || strings.Contains(out, secret) || !strings.Contains(out, "redacted") {
			t.Errorf("%s output %q is not redacted", name, out)
		}
	}
	if (Code{}).Reveal() != "" {
		t.Error("zero Code reveals something")
	}
}

// FuzzMatch: arbitrary input never panics, and whatever is accepted is
// exactly a stored code up to the documented normalisation.
func FuzzMatch(f *testing.F) {
	seeds, err := os.Open("testdata/match-seeds.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(seeds)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	seeds.Close()
	const stored = "10ABCD1E0FGHJK01"
	hashes := [][]byte{hash("ZZZZYYYYXXXXWWWW"), hash(stored)}
	f.Fuzz(func(t *testing.T, input string) {
		idx, ok := Match(input, hashes)
		norm, valid := normalise(input)
		if ok != (valid && (norm == stored || norm == "ZZZZYYYYXXXXWWWW")) {
			t.Fatalf("Match(%q) ok = %v, normalised %q (valid %v)", input, ok, norm, valid)
		}
		if !valid {
			if idx != -1 {
				t.Fatalf("invalid input %q gave index %d", input, idx)
			}
			return
		}
		if len(norm) != codeChars || strings.Trim(norm, alphabet) != "" {
			t.Fatalf("normalise(%q) = %q, not %d Crockford characters", input, norm, codeChars)
		}
		if again, ok := normalise(norm); !ok || again != norm {
			t.Fatalf("normalise not idempotent on %q: %q", norm, again)
		}
		if shown := (Code{norm: norm}).Reveal(); !display.MatchString(shown) {
			t.Fatalf("Reveal = %q", shown)
		}
		if ok && !bytes.Equal(hashes[idx], hash(norm)) {
			t.Fatalf("Match(%q) = index %d whose hash differs", input, idx)
		}
	})
}

func rawSHA256(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
