package export

import (
	"bytes"
	"regexp"
	"strings"
)

// textShow matches a PDF string shown with Tj: "(...)Tj", with the
// backslash escapes of PDF strings inside.
var textShow = regexp.MustCompile(`\(((?:[^()\\]|\\.)*)\) ?Tj`)

// Text returns the strings a PDF written by [WritePDF] shows, in order,
// one per line drawn: a reader's check (and the tests') that a file
// holds what it should, since WritePDF writes uncompressed. It does not
// read other PDFs.
func Text(pdf []byte) []string {
	var out []string
	for _, m := range textShow.FindAllSubmatch(pdf, -1) {
		out = append(out, unescape(m[1]))
	}
	return out
}

func unescape(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
			switch b[i] {
			case 'n':
				s.WriteByte('\n')
			case 'r':
				s.WriteByte('\r')
			case 't':
				s.WriteByte('\t')
			default:
				s.WriteByte(b[i])
			}
			continue
		}
		s.WriteByte(b[i])
	}
	// Windows-1252 to UTF-8 for the Latin-1 range (what the tests write).
	return string(bytes.Runes(latin1(s.String())))
}

func latin1(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		out = append(out, []byte(string(rune(s[i])))...)
	}
	return out
}
