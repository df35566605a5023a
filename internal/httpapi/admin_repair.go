package httpapi

import (
	"errors"
	"net/http"

	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

// Record repair for security administrators (docs/authorization.md,
// "Repairing a locked record"): list the Consents authorization cannot
// read, and retire one. Neither shows a Consent's content; both are
// audited (consent-repair), and the patient sees the retirement in
// their access log.

// maxRepairList bounds one listing.
const maxRepairList = 1000

func (a *adminAPI) repairRoutes(admin *http.ServeMux) {
	admin.Handle("GET /admin/api/consents/undecidable", a.authorize(a.listUndecidable))
	admin.Handle("POST /admin/api/consents/{id}/retire", a.authorize(a.retireConsent))
}

func (a *adminAPI) listUndecidable(w http.ResponseWriter, r *http.Request) error {
	if a.s.rec == nil {
		return web.New(http.StatusServiceUnavailable, "the record is not available", errors.New("no record service"))
	}
	cs, err := a.s.rec.UndecidableConsents(r.Context(), actor(r), web.RequestID(r.Context()), maxRepairList)
	if err != nil {
		return repairError(err)
	}
	type item struct {
		ID      string `json:"id"`
		Patient string `json:"patient"`
		Version int64  `json:"version"`
	}
	out := make([]item, 0, len(cs))
	for _, c := range cs {
		out = append(out, item{ID: c.ID, Patient: c.Patient.String(), Version: c.Version})
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"consents": out})
	return nil
}

func (a *adminAPI) retireConsent(w http.ResponseWriter, r *http.Request) error {
	if a.s.rec == nil {
		return web.New(http.StatusServiceUnavailable, "the record is not available", errors.New("no record service"))
	}
	id := r.PathValue("id")
	if !record.ValidID(id) {
		return web.New(http.StatusBadRequest, "invalid Consent id", nil)
	}
	v, err := a.s.rec.RepairConsent(r.Context(), actor(r), web.RequestID(r.Context()), id)
	if err != nil {
		return repairError(err)
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"id": id, "version": v, "status": "inactive"})
	return nil
}

// repairError maps record errors onto the admin API's answers; their
// messages are the record's safe ones.
func repairError(err error) error {
	var e *record.Error
	if errors.As(err, &e) {
		msg := "the repair failed"
		if len(e.Issues) > 0 {
			msg = e.Issues[0].Diagnostic
		}
		status := record.StatusCode(e)
		if status == http.StatusServiceUnavailable {
			return web.New(status, "the service is temporarily unavailable; retry later", err)
		}
		return web.New(status, msg, err)
	}
	return err
}
