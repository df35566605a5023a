package portal

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor/alerts"
)

// "Under review" in "who accessed my record" (issue 16): an access on
// which the privacy office CONFIRMED a monitoring alert is marked, in
// plain words, "Our privacy office is reviewing this access". An alert
// that is open, a false positive or waiting for an interview marks
// nothing: the patient is told only once the privacy office has
// decided that the access was not appropriate.
//
// The monitoring service's own steps (an alert raised, read, assigned,
// noted, decided, a suppression rule) name the patient in the audit log
// but are no patient's: audit.Event.PatientView leaves them out of
// every patient's view (this list, its export, the FHIR AuditEvent
// API), so that the patient (and through the patient, the person under
// review) learns of an alert only once it is confirmed.

// Reviewing says which accesses to a patient's record the privacy
// office is reviewing (the monitoring service).
type Reviewing interface {
	// UnderReview returns what confirmed alerts cover of patient's
	// ("Patient/<id>") record: the accesses kept as evidence, and each
	// alert's user and span (every access of that user to the patient
	// within it).
	UnderReview(ctx context.Context, patient string) (alerts.Review, error)
}

// markUnderReview sets UnderReview on the rows a confirmed alert
// covers: an access kept as its evidence, or any access of the alert's
// user (the row's account, or the Practitioner it is bound to) between
// the alert's first and last access. It returns false when the
// monitoring service could not answer (the page then says so; the list
// is still shown).
func (u *UI) markUnderReview(r *http.Request, patientID string, rows []accessRow) bool {
	if u.reviewing == nil || len(rows) == 0 {
		return true
	}
	rv, err := u.reviewing.UnderReview(r.Context(), ident.PatientRef(patientID).String())
	if err != nil {
		u.log.ErrorContext(r.Context(), "portal: accesses under review unavailable", slog.String("error", err.Error()))
		return false
	}
	if len(rv.Refs) == 0 && len(rv.Spans) == 0 {
		return true
	}
	set := make(map[string]bool, len(rv.Refs))
	for _, ref := range rv.Refs {
		if n, ok := strings.CutPrefix(ref, "leaf/"); ok {
			set[n] = true
		}
	}
	for i := range rows {
		x := &rows[i]
		x.UnderReview = set[x.ID] || (!x.You && rv.Covers(x.Agent, x.FHIRUser, x.When))
	}
	return true
}

// UnderReview says whether an entry of the visit is under review.
func (g accessGroup) UnderReview() bool {
	for _, e := range g.Entries {
		if e.UnderReview {
			return true
		}
	}
	return false
}
