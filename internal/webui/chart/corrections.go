package chart

import (
	"context"
	"errors"
	"net/http"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The patient's correction requests (HIPAA §164.526) on the chart: the
// care team sees what the patient asked to correct and the privacy
// office's decision. They are listed only after the chart itself was
// read, so only a viewer the record service let open this chart (a
// treatment relationship, or break-the-glass) sees them; the listing is
// audited (amendment-read) before the texts are opened.

// Corrections lists correction requests (privacy.Amendments).
type Corrections interface {
	List(ctx context.Context, by privacy.Actor, patient string, open bool, limit int) ([]privacy.Opened, error)
}

// chartCorrections bounds the requests shown on a chart.
const chartCorrections = 20

// loadCorrections fills cv.Corrections for the viewer.
func (u *UI) loadCorrections(r *http.Request, v *site.Viewer, cv *chartview.Chart) error {
	if u.corr == nil {
		return nil
	}
	c := site.Caller(r, v)
	os, err := u.corr.List(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK},
		ident.PatientRef(cv.ID).String(), false, chartCorrections)
	if errors.Is(err, audit.ErrUnavailable) {
		return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
			Msg: "The chart could not be recorded in the audit log, so it was not shown. Try again in a moment.", Err: err}
	}
	if err != nil {
		return err
	}
	for _, o := range os {
		cv.Corrections = append(cv.Corrections, chartview.Correction{Part: privacy.PartWords(o.Part), Wrong: o.Wrong, Should: o.Should,
			State: o.State, Reason: o.Reason, Created: o.Created, Decided: o.Decided})
	}
	return nil
}
