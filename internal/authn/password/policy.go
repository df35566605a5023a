package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Length rules of NIST SP 800-63B §5.1.1.2 (rev4 §3.1.1.2), counted in
// Unicode code points after NFKC normalisation, as both revisions say.
const (
	// MinRunes is 12: rev4 allows 8 only where the password is one factor
	// of several; these passwords guard health records and may be the
	// only factor until MFA is enrolled, and DESIGN.md §7 asks for 12.
	MinRunes = 12
	// MaxRunes is 128: NIST requires accepting at least 64; 128 leaves
	// room for long passphrases and bounds the normalisation and hashing
	// work input can drive (STYLE rule 24).
	MaxRunes = 128
	// minContextRunes: context words shorter than 4 characters are
	// ignored; a 3-letter user name inside a long passphrase is chance,
	// and refusing it would only push people to weaker choices.
	minContextRunes = 4
	// serviceName is always a context word (rev4 §3.1.1.2: "context-
	// specific words, such as the name of the service").
	serviceName = "phivault"
)

// commonGz is the bundled list of common and breached passwords: one per
// line, lower-case, sorted, deduplicated. Source, version, licence and
// count: see NOTICE in this directory.
//
//go:embed common-passwords.txt.gz
var commonGz []byte

// commonList decodes the bundled list once, on first use (≈ 50k entries in
// one string of ≈ 390 KB plus the slice headers); it is never modified.
var commonList = sync.OnceValue(func() []string {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("password: bundled common-password list is corrupt: " + err.Error())
	}
	var list []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			list = append(list, w)
		}
	}
	if err := sc.Err(); err != nil {
		panic("password: bundled common-password list is corrupt: " + err.Error())
	}
	if !slices.IsSorted(list) {
		slices.Sort(list)
	}
	return slices.Compact(list)
})

// Check reports whether pw is acceptable as a new password under NIST SP
// 800-63B §5.1.1.2 (rev4 §3.1.1.2). There are no composition rules and
// nothing expires; the rules are:
//
//   - valid UTF-8, [MinRunes] to [MaxRunes] code points after NFKC
//     normalisation (spaces and any Unicode character are allowed);
//   - not in the bundled list of common and breached passwords, compared
//     case-insensitively, including with leading and trailing digits,
//     spaces and punctuation removed ("Password1234!" is "password") and
//     as one repeated unit ("abcabcabcabc", "monkeymonkey");
//   - not containing any context word of 4 or more characters, compared
//     case-insensitively: pass the user name and the e-mail address (its
//     local part is checked too); "phivault" is always checked.
//
// It returns [ErrInvalidUTF8], [ErrTooShort], [ErrTooLong], [ErrCommon]
// or [ErrContext], whose messages are safe to show and never contain pw.
// Check is safe for concurrent use.
func Check(pw string, context ...string) error {
	if len(pw) > MaxPasswordBytes {
		return ErrTooLong
	}
	if !utf8.ValidString(pw) {
		return ErrInvalidUTF8
	}
	n := norm.NFKC.String(pw)
	switch c := utf8.RuneCountInString(n); {
	case c < MinRunes:
		return ErrTooShort
	case c > MaxRunes:
		return ErrTooLong
	}
	lower := strings.ToLower(n)
	if isCommon(lower) {
		return ErrCommon
	}
	for _, w := range contextWords(context) {
		if strings.Contains(lower, w) {
			return ErrContext
		}
	}
	return nil
}

// isCommon reports whether lower (NFKC, lower-case) is on the list or is a
// listed word decorated with leading and trailing non-letters, or is one
// short unit repeated.
func isCommon(lower string) bool {
	list := commonList()
	listed := func(s string) bool {
		_, found := slices.BinarySearch(list, s)
		return found
	}
	if listed(lower) {
		return true
	}
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if core != "" && core != lower && listed(core) {
		return true
	}
	if unit, ok := repeatedUnit(lower); ok {
		// A unit of up to 4 characters repeated ("aaaaaaaaaaaa",
		// "abcabcabcabc", "12341234...") is repetitive (NIST's example
		// "aaaaaa"); a longer one is as strong as the unit alone.
		if utf8.RuneCountInString(unit) <= 4 || listed(unit) {
			return true
		}
	}
	return false
}

// repeatedUnit reports whether s is k ≥ 2 copies of its shortest unit.
func repeatedUnit(s string) (string, bool) {
	for size := 1; size <= len(s)/2; size++ {
		if len(s)%size != 0 {
			continue
		}
		if u := s[:size]; strings.Repeat(u, len(s)/size) == s {
			return u, utf8.ValidString(u)
		}
	}
	return "", false
}

// contextWords returns the normalised words Check refuses inside a
// password: each given word, the local part of e-mail addresses, and the
// service name; words under minContextRunes characters are dropped.
func contextWords(context []string) []string {
	words := []string{serviceName}
	for _, c := range context {
		c = strings.ToLower(norm.NFKC.String(strings.TrimSpace(c)))
		words = append(words, c)
		if local, _, ok := strings.Cut(c, "@"); ok {
			words = append(words, local)
		}
	}
	return slices.DeleteFunc(words, func(w string) bool {
		return utf8.RuneCountInString(w) < minContextRunes
	})
}
