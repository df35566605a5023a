package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
)

var (
	// errNoProxyPatient is a proxy account without an active grant.
	errNoProxyPatient = errors.New("the proxy account has no active grant")
	// errProxyConsent is a proxy's attempt to change sharing choices.
	errProxyConsent = errors.New("a proxy may not write the patient's Consent")
)

// proxyPatient returns the id of the patient the proxy's RelatedPerson
// rp holds an active grant for, as the authorizer that decides the
// proxy's every read finds it (authz.Authorizer.ProxyPatient, also
// behind the audit log's patient view): errNoProxyPatient when none
// (withdrawn, ended, never granted).
func (u *UI) proxyPatient(r *http.Request, rp string) (string, error) {
	if u.authz == nil {
		return "", errNoProxyPatient
	}
	ref, err := u.authz.ProxyPatient(r.Context(), "RelatedPerson/"+rp)
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(ref, ident.PatientPrefix)
	if !ok || !record.ValidID(id) {
		return "", errNoProxyPatient
	}
	return id, nil
}
