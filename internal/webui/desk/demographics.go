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

// apply writes d onto Patient p: the official (else first) name, birth
// date, gender, the first phone and the first address.
func (d demographics) apply(p map[string]any) {
	name := map[string]any{"use": "official", "family": d.Family}
	if d.Given != "" {
		name["given"] = strings.Fields(d.Given)
	}
	names, _ := p["name"].([]any)
	idx := -1
	for i, n := range names {
		if m, ok := n.(map[string]any); ok && (m["use"] == "official" || idx < 0) {
			idx = i
		}
	}
	if idx < 0 {
		p["name"] = []any{name}
	} else {
		names[idx] = name
		p["name"] = names
	}
	p["birthDate"] = d.BirthDate
	if d.Gender != "" {
		p["gender"] = d.Gender
	} else {
		delete(p, "gender")
	}
	var telecom []any
	if old, ok := p["telecom"].([]any); ok {
		for _, t := range old {
			if m, ok := t.(map[string]any); ok && m["system"] == "phone" {
				continue
			}
			telecom = append(telecom, t)
		}
	}
	if d.Phone != "" {
		telecom = append([]any{map[string]any{"system": "phone", "value": d.Phone}}, telecom...)
	}
	if len(telecom) > 0 {
		p["telecom"] = telecom
	} else {
		delete(p, "telecom")
	}
	addr := map[string]any{}
	if d.Line != "" {
		addr["line"] = []any{d.Line}
	}
	if d.City != "" {
		addr["city"] = d.City
	}
	if d.PostalCode != "" {
		addr["postalCode"] = d.PostalCode
	}
	old, _ := p["address"].([]any)
	switch {
	case len(addr) == 0 && len(old) > 0:
		p["address"] = old[1:]
		if len(old) == 1 {
			delete(p, "address")
		}
	case len(addr) == 0:
	case len(old) > 0:
		old[0] = addr
		p["address"] = old
	default:
		p["address"] = []any{addr}
	}
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
