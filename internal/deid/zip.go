package deid

import (
	_ "embed"
	"fmt"
	"strings"
)

// restrictedZIP3Data is the HHS list of 3-digit ZIP areas of 20,000
// people or fewer, with its source (restricted-zip3.txt).
//
//go:embed restricted-zip3.txt
var restrictedZIP3Data string

// parseZIP3 reads the list: one 3-digit prefix a line, "#" comments.
func parseZIP3(data string) (map[string]bool, error) {
	out := map[string]bool{}
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) != 3 || strings.Trim(line, "0123456789") != "" {
			return nil, fmt.Errorf("restricted ZIP list, line %d: want 3 digits", i+1)
		}
		out[line] = true
	}
	return out, nil
}

// zip3 generalises a postal code (§164.514(b)(2)(i)(B)): a US ZIP code
// (5 digits, or ZIP+4) becomes its first 3 digits, or "000" when that
// 3-digit area is on the restricted list. Anything else (a foreign
// postcode, a malformed ZIP) is dropped: it cannot be checked against
// the census. It returns the value ("" to drop) and the reason counted.
func (t *Transformer) zip3(s string) (string, string) {
	s = strings.TrimSpace(s)
	d := s
	if len(d) == 10 && d[5] == '-' {
		d = d[:5] + d[6:]
	}
	if (len(d) != 5 && len(d) != 9) || strings.Trim(d, "0123456789") != "" {
		return "", reasonZIPOther
	}
	if t.restricted[d[:3]] {
		return "000", reasonZIP000
	}
	return d[:3], reasonZIP3
}
