package deid

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// terminologiesData is the list of standard terminologies whose codes
// are kept, with the code syntax of each and its source
// (terminologies.txt).
//
//go:embed terminologies.txt
var terminologiesData string

// terminology is one entry of terminologies.txt.
type terminology struct {
	system string
	prefix bool           // system names a family: "<system><name>"
	code   *regexp.Regexp // the code syntax, anchored
}

// terminologies decides whether a Coding is of a standard terminology.
// Read-only after parseTerminologies.
type terminologies struct {
	exact  map[string]*regexp.Regexp
	prefix []terminology
}

// familyMember is the name after a family prefix: one path segment.
var familyMember = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$`)

// longDigitRun matches 5 digits in a row: a phone number, an SSN, a
// date or a record number has one; no code of an HL7 family does.
var longDigitRun = regexp.MustCompile(`[0-9]{5}`)

// parseTerminologies reads the list: "exact|prefix<TAB>system<TAB>pattern"
// a line, "#" comments.
func parseTerminologies(data string) (*terminologies, error) {
	t := &terminologies{exact: map[string]*regexp.Regexp{}}
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || (f[0] != "exact" && f[0] != "prefix") || f[1] == "" {
			return nil, fmt.Errorf("terminology list, line %d: want exact|prefix, system and pattern separated by tabs", i+1)
		}
		re, err := regexp.Compile(`^(?:` + f[2] + `)$`)
		if err != nil {
			return nil, fmt.Errorf("terminology list, line %d: %w", i+1, err)
		}
		if f[0] == "exact" {
			t.exact[f[1]] = re
		} else {
			t.prefix = append(t.prefix, terminology{system: f[1], prefix: true, code: re})
		}
	}
	return t, nil
}

// standard reports whether a Coding of system and code is kept: the
// system is a listed terminology (or a member of a listed family) and
// the code has that terminology's syntax. Family members (HL7 and US
// Core code systems) are one path segment after the prefix, so
// "http://hl7.org/fhir/sid/us-ssn" (an identifier system, not a code
// system) is not one, and their codes hold no run of 5 digits.
func (t *terminologies) standard(system, code string) bool {
	if system == "" || code == "" || len(code) > maxCodeLen {
		return false
	}
	if re, ok := t.exact[system]; ok {
		return re.MatchString(code)
	}
	for _, f := range t.prefix {
		name, ok := strings.CutPrefix(system, f.system)
		if ok && familyMember.MatchString(name) {
			return f.code.MatchString(code) && !longDigitRun.MatchString(code)
		}
	}
	return false
}
