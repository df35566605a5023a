package desk

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Registration and demographics. A registration creates a Patient with
// the demographics entered and a new medical record number; editing
// changes only the demographics the form shows (name, birth date,
// gender, phone, address) on the current version, which the record
// service stores with what the front desk's masked view hides kept as
// it was (ADR 0033).

// MRNSystem is the identifier system of the medical record numbers the
// front desk assigns.
const MRNSystem = "urn:phivault:mrn"

// maxField bounds each demographic field, in bytes.
const maxField = 100

var (
	datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	genders     = []string{"female", "male", "other", "unknown"}
)

// demographics are the form's fields.
type demographics struct {
	Family, Given, BirthDate, Gender, Phone, Line, City, PostalCode string
}

func demographicsFrom(r *http.Request) demographics {
	f := func(k string) string { return strings.TrimSpace(r.PostForm.Get(k)) }
	return demographics{Family: f("family"), Given: f("given"), BirthDate: f("birthdate"), Gender: f("gender"),
		Phone: f("phone"), Line: f("line"), City: f("city"), PostalCode: f("postal")}
}

// validate returns a plain message, or "".
func (d demographics) validate() string {
	for _, s := range []string{d.Family, d.Given, d.Phone, d.Line, d.City, d.PostalCode} {
		if len(s) > maxField || !utf8.ValidString(s) {
			return "Each field is text of at most 100 characters."
		}
	}
	switch {
	case d.Family == "":
		return "Enter the family name."
	case !datePattern.MatchString(d.BirthDate):
		return "Enter the birth date as YYYY-MM-DD."
	case d.Gender != "" && !contains(genders, d.Gender):
		return "Choose a gender from the list."
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// apply writes d onto Patient p: the official (else first) name's family
// and given names, the birth date, the gender, the first phone's value
// and the first address's first line, city and postal code. It edits
// those elements in place and keeps everything else of them (a name's
// prefix and period, a phone's use, an address's state, country and
// extensions, other names, phones and addresses): a save of the form
// unchanged stores what was there.
func (d demographics) apply(p map[string]any) {
	names, _ := p["name"].([]any)
	idx := -1
	for i, n := range names {
		if m, ok := n.(map[string]any); ok && (m["use"] == "official" || idx < 0) {
			idx = i
		}
	}
	name := map[string]any{"use": "official"}
	if idx >= 0 {
		name = names[idx].(map[string]any)
	}
	setOrDelete(name, "family", d.Family)
	if given := strings.Fields(d.Given); len(given) > 0 {
		if old, _ := name["given"].([]any); !sameStrings(old, given) {
			name["given"] = given
		}
	} else {
		delete(name, "given")
	}
	if idx < 0 {
		p["name"] = append(names, name)
	}
	p["birthDate"] = d.BirthDate
	setOrDelete(p, "gender", d.Gender)

	telecom, _ := p["telecom"].([]any)
	phone := -1
	for i, t := range telecom {
		if m, ok := t.(map[string]any); ok && m["system"] == "phone" {
			phone = i
			break
		}
	}
	switch {
	case phone >= 0 && d.Phone != "":
		telecom[phone].(map[string]any)["value"] = d.Phone
	case phone >= 0:
		telecom = append(telecom[:phone:phone], telecom[phone+1:]...)
	case d.Phone != "":
		telecom = append([]any{map[string]any{"system": "phone", "value": d.Phone}}, telecom...)
	}
	setList(p, "telecom", telecom)

	addrs, _ := p["address"].([]any)
	var addr map[string]any
	if len(addrs) > 0 {
		addr, _ = addrs[0].(map[string]any)
	}
	if addr == nil {
		if d.Line == "" && d.City == "" && d.PostalCode == "" {
			return
		}
		addr = map[string]any{}
		addrs = append([]any{addr}, addrs...)
	}
	lines, _ := addr["line"].([]any)
	switch {
	case d.Line != "" && len(lines) > 0:
		lines[0] = d.Line
	case d.Line != "":
		lines = []any{d.Line}
	case len(lines) > 0:
		lines = lines[1:]
	}
	setList(addr, "line", lines)
	setOrDelete(addr, "city", d.City)
	setOrDelete(addr, "postalCode", d.PostalCode)
	if len(addr) == 0 {
		addrs = addrs[1:]
	}
	setList(p, "address", addrs)
}

// setOrDelete sets m[k] to v, or removes k when v is empty.
func setOrDelete(m map[string]any, k, v string) {
	if v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}

// setList sets m[k] to xs, or removes k when xs is empty (FHIR has no
// empty arrays).
func setList(m map[string]any, k string, xs []any) {
	if len(xs) == 0 {
		delete(m, k)
		return
	}
	m[k] = xs
}

// sameStrings reports whether old (JSON strings) holds exactly ss.
func sameStrings(old []any, ss []string) bool {
	if len(old) != len(ss) {
		return false
	}
	for i, x := range old {
		if s, _ := x.(string); s != ss[i] {
			return false
		}
	}
	return true
}

// demographicsOf reads the form's fields from Patient p.
func demographicsOf(p chartview.Obj) demographics {
	d := demographics{BirthDate: p.Str("birthDate"), Gender: p.Str("gender")}
	names := p.List("name")
	for i, n := range names {
		if i == 0 || n.Str("use") == "official" {
			d.Family, d.Given = n.Str("family"), strings.Join(n.Strs("given"), " ")
		}
	}
	for _, t := range p.List("telecom") {
		if t.Str("system") == "phone" {
			d.Phone = t.Str("value")
			break
		}
	}
	if as := p.List("address"); len(as) > 0 {
		if ls := as[0].Strs("line"); len(ls) > 0 {
			d.Line = ls[0]
		}
		d.City, d.PostalCode = as[0].Str("city"), as[0].Str("postalCode")
	}
	return d
}

type registerView struct {
	Form    demographics
	Error   string
	Genders []string
}

func (u *UI) registerForm(w http.ResponseWriter, r *http.Request) error {
	u.site.Render(w, r, http.StatusOK, "desk-register", site.PageData{Title: "Register a patient", Viewer: site.ViewerFrom(r.Context()), Nav: "desk",
		Data: registerView{Genders: genders}})
	return nil
}

// newMRN draws a medical record number: "M" and 9 random digits.
func (u *UI) newMRN() (string, error) {
	rd := u.rand
	if rd == nil {
		rd = rand.Reader
	}
	n, err := rand.Int(rd, big.NewInt(1_000_000_000))
	if err != nil {
		return "", fmt.Errorf("drawing a record number: %w", err)
	}
	return fmt.Sprintf("M%09d", n), nil
}

func (u *UI) register(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	d := demographicsFrom(r)
	if msg := d.validate(); msg != "" {
		u.site.Render(w, r, http.StatusBadRequest, "desk-register", site.PageData{Title: "Register a patient", Viewer: v, Nav: "desk",
			Data: registerView{Form: d, Error: msg, Genders: genders}})
		return nil
	}
	mrn, err := u.newMRN()
	if err != nil {
		return err
	}
	p := map[string]any{"resourceType": "Patient", "active": true, "identifier": []any{map[string]any{
		"use":    "usual",
		"type":   map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}}},
		"system": MRNSystem, "value": mrn}}}
	d.apply(p)
	res, err := u.parse(p)
	if err != nil {
		return err
	}
	st, _, err := u.rec.Create(r.Context(), site.Caller(r, v), res, "")
	if msg := refusal(err); msg != "" {
		u.site.Render(w, r, http.StatusUnprocessableEntity, "desk-register", site.PageData{Title: "Register a patient", Viewer: v, Nav: "desk",
			Data: registerView{Form: d, Error: msg, Genders: genders}})
		return nil
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/desk/patients/"+st.ID)
}

func (u *UI) parse(p map[string]any) (fhir.Resource, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return u.rec.Parse(b)
}

// refusal is the plain message of a write the record refused as
// invalid (its diagnostics never echo values), or "".
func refusal(err error) string {
	var re *record.Error
	if !errors.As(err, &re) {
		return ""
	}
	switch record.StatusCode(re) {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		var parts []string
		for _, is := range re.Issues {
			parts = append(parts, is.Diagnostic)
		}
		return "It was not saved: " + strings.Join(parts, "; ")
	case http.StatusPreconditionFailed, http.StatusConflict:
		return "Someone changed this record meanwhile. Open it again and retry."
	case http.StatusForbidden:
		return "Your access does not allow this change."
	}
	return ""
}
