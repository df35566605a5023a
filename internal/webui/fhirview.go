package webui

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Reading FHIR JSON for display. Resources come from the record service
// (validated at write); these helpers read leniently and show "" for
// anything missing or oddly typed rather than failing the page.

// obj is a decoded JSON object.
type obj map[string]any

func (o obj) str(key string) string {
	s, _ := o[key].(string)
	return s
}

func (o obj) obj(key string) obj {
	m, _ := o[key].(map[string]any)
	return m
}

func (o obj) list(key string) []obj {
	a, _ := o[key].([]any)
	out := make([]obj, 0, len(a))
	for _, x := range a {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func (o obj) strs(key string) []string {
	a, _ := o[key].([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// concept is a CodeableConcept's text, else its first coding's display,
// else its first code.
func concept(c obj) string {
	if c == nil {
		return ""
	}
	if t := c.str("text"); t != "" {
		return t
	}
	for _, cd := range c.list("coding") {
		if d := cd.str("display"); d != "" {
			return d
		}
	}
	for _, cd := range c.list("coding") {
		if d := cd.str("code"); d != "" {
			return d
		}
	}
	return ""
}

// hasCode reports whether CodeableConcept c has coding system|code.
func hasCode(c obj, system, code string) bool {
	for _, cd := range c.list("coding") {
		if cd.str("system") == system && cd.str("code") == code {
			return true
		}
	}
	return false
}

// humanName is a Patient's official (else first) name: "Family, Given".
func humanName(p obj) string {
	names := p.list("name")
	if len(names) == 0 {
		return "(no name)"
	}
	n := names[0]
	for _, x := range names {
		if x.str("use") == "official" {
			n = x
			break
		}
	}
	if t := n.str("text"); t != "" {
		return t
	}
	given := strings.Join(n.strs("given"), " ")
	switch fam := n.str("family"); {
	case fam != "" && given != "":
		return fam + ", " + given
	case fam != "":
		return fam
	case given != "":
		return given
	}
	return "(no name)"
}

// mrn is the Patient's medical record number (identifier type MR),
// else its first identifier value.
func mrn(p obj) string {
	ids := p.list("identifier")
	for _, id := range ids {
		if hasCode(id.obj("type"), "http://terminology.hl7.org/CodeSystem/v2-0203", "MR") {
			return id.str("value")
		}
	}
	if len(ids) > 0 {
		return ids[0].str("value")
	}
	return ""
}

// when parses a FHIR date or dateTime ("" or unparsable: zero).
func when(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// shortDate shows the date part of a FHIR date or dateTime.
func shortDate(s string) string {
	if len(s) >= 10 {
		return s[:10]
	}
	return s
}

// quantity formats a Quantity: "72 /min".
func quantity(q obj) string {
	if q == nil {
		return ""
	}
	v, ok := number(q["value"])
	if !ok {
		return ""
	}
	u := q.str("unit")
	if u == "" {
		u = q.str("code")
	}
	return strings.TrimSpace(strconv.FormatFloat(v, 'f', -1, 64) + " " + u)
}

func number(x any) (float64, bool) {
	switch n := x.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// observationValue is what an Observation says: a quantity, a coded or
// text value, or its components ("120/80 mm[Hg]" style for blood pressure).
func observationValue(o obj) string {
	if q := quantity(o.obj("valueQuantity")); q != "" {
		return q
	}
	if c := concept(o.obj("valueCodeableConcept")); c != "" {
		return c
	}
	if s := o.str("valueString"); s != "" {
		return s
	}
	var parts []string
	for _, c := range o.list("component") {
		if q := quantity(c.obj("valueQuantity")); q != "" {
			parts = append(parts, concept(c.obj("code"))+" "+q)
		}
	}
	return strings.Join(parts, "; ")
}

// maxNoteShown bounds the note text decoded for display.
const maxNoteShown = 16 << 10

// attachmentText returns the text of a DocumentReference's first
// text/plain attachment (decoded, at most maxNoteShown bytes), or "".
func attachmentText(d obj) string {
	for _, c := range d.list("content") {
		a := c.obj("attachment")
		if !strings.HasPrefix(a.str("contentType"), "text/plain") {
			continue
		}
		data := a.str("data")
		if len(data) > base64.StdEncoding.EncodedLen(maxNoteShown) {
			return "(this note is too long to show here)"
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil || !utf8.Valid(b) {
			return ""
		}
		return string(b)
	}
	return ""
}

// age is whole years from birth to now, as text ("" when unknown).
func age(birth string, now time.Time) string {
	b := when(birth)
	if b.IsZero() {
		return ""
	}
	y := now.Year() - b.Year()
	if now.Month() < b.Month() || now.Month() == b.Month() && now.Day() < b.Day() {
		y--
	}
	return fmt.Sprintf("%d", y)
}
