package totp

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

const (
	// MaxURILen caps the URI a QR code is drawn for (rule 24). Our URIs
	// are under 200 bytes; 512 still scans from a terminal.
	MaxURILen = 512

	// quietZone is the light border, in modules, ISO/IEC 18004 §6.3.8
	// requires around a QR code; scanners fail without it.
	quietZone = 4

	// MinPNGSize and MaxPNGSize bound the PNG edge in pixels: enough for a
	// phone camera, small enough that a request cannot make us allocate
	// much (MaxPNGSize² bytes at one byte per pixel at most).
	MinPNGSize = 64
	MaxPNGSize = 1024
)

// encode returns the QR matrix for uri at error-correction level M (15 %),
// the level authenticator enrolment screens conventionally use: it keeps
// the code small while surviving a glare spot.
func encode(uri string) (barcode.Barcode, error) {
	if len(uri) > MaxURILen {
		return nil, fmt.Errorf("encoding qr code: %w", ErrURITooLong)
	}
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		// The encoder's errors describe capacity, never the content.
		return nil, fmt.Errorf("encoding qr code: %w", err)
	}
	return code, nil
}

// dark reports whether module (x, y) of code is dark; modules outside the
// code (the quiet zone) are light.
func dark(code barcode.Barcode, x, y int) bool {
	b := code.Bounds()
	if !(image.Point{x, y}).In(b) {
		return false
	}
	r, _, _, _ := code.At(x, y).RGBA()
	return r < 0x8000
}

// WriteQR draws uri as a QR code on w for a terminal, two modules per
// character cell with Unicode half blocks (▀ ▄ █) and a 4-module quiet
// zone. Colours are set explicitly with ANSI SGR codes (white on black,
// reset at each line end) so the code scans on light and dark terminal
// themes alike. It returns an error wrapping [ErrURITooLong] for a URI
// longer than [MaxURILen], or w's error.
//
// The URI contains the TOTP secret: write it only to the enrolling
// user's own terminal, never to a log.
func WriteQR(w io.Writer, uri string) error {
	code, err := encode(uri)
	if err != nil {
		return err
	}
	n := code.Bounds().Dx()
	bw := bufio.NewWriter(w)
	const (
		on  = "\x1b[97;40m" // bright white foreground (light), black background (dark)
		off = "\x1b[0m"
	)
	for y := -quietZone; y < n+quietZone; y += 2 {
		bw.WriteString(on)
		for x := -quietZone; x < n+quietZone; x++ {
			top, bottom := !dark(code, x, y), !dark(code, x, y+1)
			switch {
			case top && bottom:
				bw.WriteString("█")
			case top:
				bw.WriteString("▀")
			case bottom:
				bw.WriteString("▄")
			default:
				bw.WriteString(" ")
			}
		}
		bw.WriteString(off + "\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing qr code: %w", err)
	}
	return nil
}

// PNG renders uri as a size×size black-on-white PNG with a 4-module quiet
// zone, modules scaled by a whole number of pixels so the edges stay sharp
// (the rest of the width is white margin). It returns an error wrapping
// [ErrURITooLong], or [ErrInvalidSize] when size is outside
// [MinPNGSize]..[MaxPNGSize] or gives less than 2 pixels per module.
func PNG(uri string, size int) ([]byte, error) {
	if size < MinPNGSize || size > MaxPNGSize {
		return nil, fmt.Errorf("rendering qr png of %d px: %w", size, ErrInvalidSize)
	}
	code, err := encode(uri)
	if err != nil {
		return nil, err
	}
	n := code.Bounds().Dx()
	px := size / (n + 2*quietZone)
	if px < 2 {
		return nil, fmt.Errorf("rendering qr png of %d px for %d modules: %w", size, n, ErrInvalidSize)
	}
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	off := (size - n*px) / 2
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if !dark(code, x, y) {
				continue
			}
			for dy := 0; dy < px; dy++ {
				row := img.Pix[(off+y*px+dy)*img.Stride:]
				for dx := 0; dx < px; dx++ {
					row[off+x*px+dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding qr png: %w", err)
	}
	return buf.Bytes(), nil
}
