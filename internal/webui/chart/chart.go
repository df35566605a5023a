package chart

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// searchFailure maps a failed search to a page.
func searchFailure(err error) error {
	var re *record.Error
	if errors.As(err, &re) && record.StatusCode(re) == http.StatusBadRequest {
		return site.PageErr(http.StatusBadRequest, "Search not understood", "The search could not be run. Check what you typed and try again.", err)
	}
	return err
}

type deniedView struct {
	ID    string
	Error string
}

// chartPage renders the chart, or the "no treatment relationship" page
// when the record service refuses.
func (u *UI) chartPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	cv, err := chartview.Load(r.Context(), u.rec, u.now, site.Caller(r, v), r.PathValue("id"))
	if chartview.Denied(err) {
		u.renderDenied(w, r, r.PathValue("id"))
		return nil
	}
	if err != nil {
		return err
	}
	u.recent.add(v.P.ID, cv.ID)
	cv.Form.Kinds = kindOptions("")
	if cv.EmergencyUntil, err = u.emergencyUntil(r.Context(), v, cv.ID); err != nil {
		return err
	}
	if err := u.loadCorrections(r, v, cv); err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "chart", site.PageData{Title: "Chart", Viewer: v, Nav: "patients", Data: cv})
	return nil
}

func (u *UI) renderDenied(w http.ResponseWriter, r *http.Request, id string) {
	if !record.ValidID(id) {
		id = ""
	}
	u.site.Render(w, r, http.StatusForbidden, "denied", site.PageData{Title: "No treatment relationship", Viewer: site.ViewerFrom(r.Context()), Nav: "patients", Data: deniedView{ID: id}})
}

// breakGlass is where the break-the-glass form posts: it opens the
// authorization engine's emergency grant on this one patient (time-boxed,
// every access under it audited with purpose ETREAT, a high-priority
// alert and a review the privacy officer must close), then shows the
// chart. The reason text may hold PHI: it is sealed by the engine and
// never logged here.
func (u *UI) breakGlass(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	id := r.PathValue("id")
	if !record.ValidID(id) {
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such patient.", errors.New("bad patient id"))
	}
	if u.glass == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Emergency access is unavailable",
			"Emergency access cannot be opened right now. Contact the privacy office or the patient's care team.", errors.New("no break-glass service"))
	}
	reason := r.PostForm.Get("reason")
	if !slices.Contains(authz.ReasonCodes, reason) {
		reason = ""
	}
	body, err := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "reason", "valueCode": reason},
		map[string]any{"name": "text", "valueString": r.PostForm.Get("detail")},
	}})
	if err != nil {
		return err
	}
	req, err := authz.ParseBreakGlass(body)
	if err != nil {
		u.site.Render(w, r, http.StatusBadRequest, "denied", site.PageData{Title: "No treatment relationship", Viewer: v, Nav: "patients",
			Data: deniedView{ID: id, Error: "Choose a reason and explain the emergency in words (at most 1,000 characters)."}})
		return nil
	}
	c := site.Caller(r, v)
	c.Purpose = "ETREAT"
	_, _, err = u.glass.Open(r.Context(), v.P, c.Agent, c.RequestID, id, req)
	switch {
	case err == nil:
		return site.Redirect(w, r, "/patients/"+id)
	case errors.Is(err, storage.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such patient.", err)
	case errors.Is(err, authz.ErrDenied):
		return site.PageErr(http.StatusForbidden, "Emergency access not permitted", "Your account may not use emergency access.", err)
	}
	return site.PageErr(http.StatusServiceUnavailable, "Emergency access is unavailable", "Emergency access could not be opened. Try again, or contact the privacy office.", err)
}

// noteTitle returns a default title.
func noteTitle(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "Progress note"
	}
	return s
}
