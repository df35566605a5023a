package totp

import (
	"bytes"
	"errors"
	"flag"
	"image/png"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// goldenURI is a fixed enrolment URI (the RFC 6238 test seed, not a real
// secret).
const goldenURI = "otpauth://totp/phivault%20demo:alice@example.test?algorithm=SHA1&digits=6&issuer=phivault%20demo&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestWriteQRGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteQR(&buf, goldenURI); err != nil {
		t.Fatal(err)
	}
	const path = "testdata/qr.golden"
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteQR output differs from %s (run with -update if intended):\n%s", path, buf.String())
	}
}

// TestWriteQRShape checks what a scanner needs: a square of modules with
// a light quiet zone and the dark top-left finder pattern.
func TestWriteQRShape(t *testing.T) {
	code, err := encode(goldenURI)
	if err != nil {
		t.Fatal(err)
	}
	n := code.Bounds().Dx()
	var buf bytes.Buffer
	if err := WriteQR(&buf, goldenURI); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if want := (n + 2*quietZone + 1) / 2; len(lines) != want {
		t.Fatalf("%d lines, want %d for %d modules", len(lines), want, n)
	}
	for i, l := range lines {
		body, ok := strings.CutPrefix(l, "\x1b[97;40m")
		body, ok2 := strings.CutSuffix(body, "\x1b[0m")
		if !ok || !ok2 {
			t.Fatalf("line %d lacks colour set/reset: %q", i, l)
		}
		if got := utf8.RuneCountInString(body); got != n+2*quietZone {
			t.Fatalf("line %d is %d cells, want %d", i, got, n+2*quietZone)
		}
		lines[i] = body
	}
	// Rows -4..-1 are quiet zone: both halves light.
	for _, l := range lines[:quietZone/2] {
		if strings.Trim(l, "█") != "" {
			t.Errorf("quiet zone row not all light: %q", l)
		}
	}
	// Module rows 0 and 1 (line 2): cells 4..10 are the finder's dark top
	// edge and the dark-rimmed row below it.
	row := []rune(lines[quietZone/2])
	if string(row[:quietZone]) != "████" || row[quietZone] != ' ' {
		t.Errorf("finder pattern not where expected: %q", string(row[:quietZone+7]))
	}
}

func TestPNG(t *testing.T) {
	tests := []struct {
		name    string
		uri     string
		size    int
		wantErr error
	}{
		{"default size", goldenURI, 256, nil},
		{"short uri, two pixels per module", "otpauth://totp/a:b?secret=GEZDGNBVGY3TQOJQ", 80, nil},
		{"largest", goldenURI, MaxPNGSize, nil},
		{"too small", goldenURI, MinPNGSize - 1, ErrInvalidSize},
		{"too large", goldenURI, MaxPNGSize + 1, ErrInvalidSize},
		{"too few pixels per module", goldenURI, MinPNGSize, ErrInvalidSize},
		{"uri too long", strings.Repeat("a", MaxURILen+1), 256, ErrURITooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := PNG(tc.uri, tc.size)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if r := img.Bounds(); r.Dx() != tc.size || r.Dy() != tc.size {
				t.Fatalf("bounds %v, want %dx%d", r, tc.size, tc.size)
			}
			code, _ := encode(tc.uri)
			n := code.Bounds().Dx()
			px := tc.size / (n + 2*quietZone)
			off := (tc.size - n*px) / 2
			isDark := func(x, y int) bool { r, _, _, _ := img.At(x, y).RGBA(); return r < 0x8000 }
			if isDark(0, 0) || isDark(tc.size-1, tc.size-1) || isDark(off-1, off-1) {
				t.Error("quiet zone is not light")
			}
			if !isDark(off, off) || !isDark(off+7*px-1, off) {
				t.Error("top-left finder pattern is not dark")
			}
			if isDark(off+px, off+px) {
				t.Error("finder pattern's inner ring is not light")
			}
		})
	}
}

func TestWriteQRTooLong(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteQR(&buf, strings.Repeat("a", MaxURILen+1)); !errors.Is(err, ErrURITooLong) {
		t.Fatalf("err = %v, want ErrURITooLong", err)
	}
	if buf.Len() != 0 {
		t.Error("output written for a refused URI")
	}
}
