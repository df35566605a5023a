package ident

import (
	"strings"
	"unicode/utf8"
)

// Loggable bounds an identifier read from a row that may have been
// tampered with before it is logged or reported: valid UTF-8, no control
// characters, at most 128 bytes.
func Loggable(id string) string {
	if len(id) > 128 {
		id = id[:128]
	}
	id = strings.ToValidUTF8(id, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, id)
}
