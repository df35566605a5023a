package portal

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/site"
)

var (
	// errNoProxyPatient is a RelatedPerson that names no patient.
	errNoProxyPatient = errors.New("the proxy's RelatedPerson names no patient")
	// errProxyConsent is a proxy's attempt to change sharing choices.
	errProxyConsent = errors.New("a proxy may not write the patient's Consent")
)

// proxyPatient reads the proxy's RelatedPerson rp as the proxy and
// returns the id of the patient it names. The policies let a proxy read
// it only while its grant is active (authz/proxy.go).
func (u *UI) proxyPatient(r *http.Request, v *site.Viewer, rp string) (string, error) {
	st, err := u.rec.Read(r.Context(), portalCaller(r, v), "RelatedPerson", rp)
	if err != nil {
		return "", err
	}
	var body struct {
		Patient struct {
			Reference string `json:"reference"`
		} `json:"patient"`
	}
	if err := json.Unmarshal(st.JSON, &body); err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(body.Patient.Reference, ident.PatientPrefix)
	if !ok || !record.ValidID(id) {
		return "", errNoProxyPatient
	}
	return id, nil
}
