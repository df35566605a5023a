package chartview

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

// Obj is a decoded JSON object.
type Obj map[string]any

func (o Obj) Str(key string) string {
	s, _ := o[key].(string)
	return s
}

func (o Obj) Obj(key string) Obj {
	m, _ := o[key].(map[string]any)
	return m
}

func (o Obj) List(key string) []Obj {
	a, _ := o[key].([]any)
	out := make([]Obj, 0, len(a))
	for _, x := range a {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func (o Obj) Strs(key string) []string {
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
func concept(c Obj) string {
	if c == nil {
		return ""
	}
	if t := c.Str("text"); t != "" {
		return t
	}
	for _, cd := range c.List("coding") {
		if d := cd.Str("display"); d != "" {
			return d
		}
	}
	for _, cd := range c.List("coding") {
		if d := cd.Str("code"); d != "" {
			return d
		}
	}
	return ""
}

// hasCode reports whether CodeableConcept c has coding system|code.
func hasCode(c Obj, system, code string) bool {
	for _, cd := range c.List("coding") {
		if cd.Str("system") == system && cd.Str("code") == code {
			return true
		}
	}
	return false
}

// HumanName is a Patient's official (else first) name: "Family, Given".
func HumanName(p Obj) string {
	names := p.List("name")
	if len(names) == 0 {
		return "(no name)"
	}
	n := names[0]
	for _, x := range names {
		if x.Str("use") == "official" {
			n = x
			break
		}
	}
	if t := n.Str("text"); t != "" {
		return t
	}
	given := strings.Join(n.Strs("given"), " ")
	switch fam := n.Str("family"); {
	case fam != "" && given != "":
		return fam + ", " + given
	case fam != "":
		return fam
	case given != "":
		return given
	}
	return "(no name)"
}

// MRN is the Patient's medical record number (identifier type MR),
// else its first identifier value.
func MRN(p Obj) string {
	ids := p.List("identifier")
	for _, id := range ids {
		if hasCode(id.Obj("type"), "http://terminology.hl7.org/CodeSystem/v2-0203", "MR") {
			return id.Str("value")
		}
	}
	if len(ids) > 0 {
		return ids[0].Str("value")
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
func quantity(q Obj) string {
	if q == nil {
		return ""
	}
	v, ok := Number(q["value"])
	if !ok {
		return ""
	}
	return WithUnit(strconv.FormatFloat(v, 'f', -1, 64), UnitDisplay(q.Str("code"), q.Str("unit")))
}

func Number(x any) (float64, bool) {
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
func observationValue(o Obj) string {
	if q := quantity(o.Obj("valueQuantity")); q != "" {
		return q
	}
	if c := concept(o.Obj("valueCodeableConcept")); c != "" {
		return c
	}
	if s := o.Str("valueString"); s != "" {
		return s
	}
	var parts []string
	for _, c := range o.List("component") {
		if q := quantity(c.Obj("valueQuantity")); q != "" {
			parts = append(parts, concept(c.Obj("code"))+" "+q)
		}
	}
	return strings.Join(parts, "; ")
}

// maxNoteShown bounds the note text decoded for display: the longest
// note the chart writes (32 KiB), so a draft is always edited whole.
const maxNoteShown = 32 << 10

// attachmentText returns the text of a DocumentReference's first
// text/plain attachment (decoded, at most maxNoteShown bytes), or "".
func attachmentText(d Obj) string {
	for _, c := range d.List("content") {
		a := c.Obj("attachment")
		if !strings.HasPrefix(a.Str("contentType"), "text/plain") {
			continue
		}
		data := a.Str("data")
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

// Concept is a CodeableConcept in words (its text, else its first
// coding's display, else its code).
func Concept(c Obj) string { return concept(c) }

// ShortDate is a FHIR date or dateTime as YYYY-MM-DD ("" if absent).
func ShortDate(s string) string { return shortDate(s) }
