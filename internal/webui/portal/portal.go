package portal

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The patient portal: a patient account sees its own record and who
// accessed it. Every record read goes through the record service with
// the patient's authorization guard (Cedar confines a patient to its own
// compartment), so each read is decided and audited like any other; the
// access list is read through the audit index, which records the read
// too. The patient's own id comes from the account's FHIR user link
// ("Patient/<id>") in the identity directory, never from the request.

// AccessLog searches the indexed audit log ([index.Reader] implements
// it). The portal always sets Filter.Patient to the signed-in patient's
// own record before calling it. Search returns audit.ErrUnavailable when
// the read could not be recorded, and no entries.
type AccessLog interface {
	Search(ctx context.Context, c index.Caller, f index.Filter) ([]index.Entry, error)
	// Get returns the event at a leaf index (index.ErrNotFound if none),
	// after recording the read.
	Get(ctx context.Context, c index.Caller, leaf int64) (index.Entry, error)
}

// errNotPatient is a portal page asked for by a non-patient account.
var errNotPatient = errors.New("portal page for a non-patient account")

// portal is signedIn for the portal pages: a patient account linked to
// its Patient resource is needed.
func (u *UI) portal(h site.HandlerFunc) site.HandlerFunc {
	return u.site.SignedIn(func(w http.ResponseWriter, r *http.Request) error {
		if err := u.portalGate(r); err != nil {
			return err
		}
		return h(w, r)
	})
}

// portalForm is form plus the portal gate.
func (u *UI) portalForm(h site.HandlerFunc) site.HandlerFunc {
	return u.site.Form(func(w http.ResponseWriter, r *http.Request) error {
		if err := u.portalGate(r); err != nil {
			return err
		}
		return h(w, r)
	})
}

// portalGate admits a patient account linked to its Patient resource,
// and a proxy account (linked to a RelatedPerson) whose grant is active:
// the patient it reads for is the one the authorizer finds the grant
// names (every read of the record is then decided and audited).
func (u *UI) portalGate(r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	if !v.Patient() {
		return site.PageErr(http.StatusForbidden, "Not available to your role",
			"The patient portal is for patients, to see their own record.", errNotPatient)
	}
	if rp, ok := strings.CutPrefix(v.FHIRUser, "RelatedPerson/"); ok && record.ValidID(rp) {
		pid, err := u.proxyPatient(r, rp)
		if err != nil {
			return site.PageErr(http.StatusForbidden, "Your proxy access is not active",
				"Your account may read a patient's record as their proxy, but that access is not active now "+
					"(it was withdrawn, it ended, or it has not been granted yet). Ask the patient or the front desk.", err)
		}
		v.ProxyFor = pid
	}
	if _, ok := ownPatient(v); !ok {
		return site.PageErr(http.StatusForbidden, "Your record is not linked",
			"Your account is not linked to a health record yet. Ask the front desk to link it.", errors.New("patient account without a Patient link"))
	}
	return nil
}

// ownPatient is the id of the Patient resource whose record the viewer
// reads: its own, or for a proxy the one the gate found.
func ownPatient(v *site.Viewer) (string, bool) {
	if v.ProxyFor != "" {
		return v.ProxyFor, record.ValidID(v.ProxyFor)
	}
	id, ok := strings.CutPrefix(v.FHIRUser, ident.PatientPrefix)
	if !ok || !record.ValidID(id) {
		return "", false
	}
	return id, true
}

// portalCaller is the audit identity of a portal request: the patient,
// reading at their own request (PATRQT).
func portalCaller(r *http.Request, v *site.Viewer) record.Caller {
	c := site.Caller(r, v)
	c.Purpose = "PATRQT"
	return c
}

// portalRecord is "My record": the chart's sections, read with the
// patient's own guard.
func (u *UI) portalRecord(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	id, _ := ownPatient(v)
	cv, err := chartview.Load(r.Context(), u.rec, u.now, portalCaller(r, v), id)
	if chartview.Denied(err) {
		return site.PageErr(http.StatusForbidden, "Your record cannot be shown",
			"Your record could not be shown to you. Contact the privacy office.", err)
	}
	if err != nil {
		return err
	}
	// A draft note is its author's until signed (ADR 0035): "My record"
	// shows signed notes and documents only. (The FHIR API and "Download
	// my data" still return every version the patient may read.)
	cv.Documents = slices.DeleteFunc(cv.Documents, func(n chartview.NoteRow) bool { return n.Draft })
	u.site.Render(w, r, http.StatusOK, "portal", site.PageData{Title: "My record", Viewer: v, Nav: "portal", Data: cv})
	return nil
}
