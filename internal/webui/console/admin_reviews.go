package console

import (
	"errors"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/webui/site"
)

// The break-the-glass review desk (privacy officer): open reviews, each
// closed with an outcome through authz.Desk (which audits the closing,
// review-close, with the patient and the grant; the reviewer's note is
// sealed with the patient's key), and the alerts list.
//
// Open reviews show the clinician's sealed free-text reason, opened with
// the patient's key; each such read is audited (break-glass-review-read).

// maxReviews bounds the reviews and alerts one page lists, as the JSON
// desk does.
const maxReviews = 200

type reviewRow struct {
	ID, Grant, User, UserName, Patient, Reason string
	Created, Expires, ClosedAt                 time.Time
	Closed, Noted                              bool
	ReasonText                                 string // the clinician's words (open reviews; the read is audited)
	ClosedBy, Outcome                          string
}

type alertRow struct {
	ID, Kind, Priority, User, UserName, Patient, Ref string
	Created                                          time.Time
	Closed                                           time.Time // zero while open
	ClosedBy                                         string
}

type reviewsView struct {
	All     bool
	Reviews []reviewRow
	Alerts  []alertRow
	Done    bool
}

// userName returns an account's username for display, or "" (the id is
// shown then).
func (u *UI) userName(r *http.Request, id string, cache map[string]string) string {
	if n, ok := cache[id]; ok {
		return n
	}
	n := ""
	if x, err := u.users.ByID(r.Context(), id); err == nil {
		n = x.Username
	}
	cache[id] = n
	return n
}

// personName returns an account's display name and username ("Dana
// Doctor (dr.dana)"), for the privacy office's pages, or "" (the id is
// shown then). The cache is per request.
func (u *UI) personName(r *http.Request, id string, cache map[string]string) string {
	if id == "" {
		return ""
	}
	if n, ok := cache[id]; ok {
		return n
	}
	n := ""
	if x, err := u.users.ByID(r.Context(), id); err == nil {
		n = x.Username
		if x.DisplayName != "" && x.DisplayName != x.Username {
			n = x.DisplayName + " (" + x.Username + ")"
		}
	}
	cache[id] = n
	return n
}

func (u *UI) adminReviews(w http.ResponseWriter, r *http.Request) error {
	desk := u.console.Reviews
	if desk == nil {
		return unavailable("The break-the-glass review desk")
	}
	all := r.URL.Query().Get("state") == "all"
	rs, err := desk.List(r.Context(), !all, maxReviews)
	if err != nil {
		return u.consoleErr(err)
	}
	as, err := desk.Alerts(r.Context(), maxReviews)
	if err != nil {
		return u.consoleErr(err)
	}
	names := map[string]string{}
	view := reviewsView{All: all, Done: r.URL.Query().Get("done") == "closed"}
	v := site.ViewerFrom(r.Context())
	for _, x := range rs {
		row := reviewRow{ID: x.ID, Grant: x.GrantID, User: x.UserID, UserName: u.personName(r, x.UserID, names),
			Patient: x.Patient, Reason: x.Reason, Created: x.Created, Expires: x.Expires, Closed: x.Closed, ClosedAt: x.ClosedAt,
			ClosedBy: u.personName(r, x.ClosedBy, names), Outcome: x.Outcome, Noted: x.Noted}
		if !x.Closed {
			// The reviewer reads the clinician's own words; each read is
			// audited before it is shown (fail closed).
			text, err := desk.Reason(r.Context(), consoleAgent(r, v), requestID(r), x.ID)
			if err != nil {
				return u.consoleErr(err)
			}
			row.ReasonText = text
		}
		view.Reviews = append(view.Reviews, row)
	}
	for _, x := range as {
		view.Alerts = append(view.Alerts, alertRow{ID: x.ID, Kind: x.Kind, Priority: x.Priority, User: x.UserID, UserName: u.personName(r, x.UserID, names),
			Patient: x.Patient, Ref: x.Ref, Created: x.Created, Closed: x.Closed, ClosedBy: u.personName(r, x.ClosedBy, names)})
	}
	u.site.Render(w, r, http.StatusOK, "admin-reviews", site.PageData{Title: "Break-the-glass reviews", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

func (u *UI) adminCloseReview(w http.ResponseWriter, r *http.Request) error {
	desk := u.console.Reviews
	if desk == nil {
		return unavailable("The break-the-glass review desk")
	}
	outcome := r.PostForm.Get("outcome")
	if outcome != "appropriate" && outcome != "inappropriate" {
		return site.PageErr(http.StatusBadRequest, "Choose an outcome", "Choose whether the access was appropriate or inappropriate, then close the review.", errors.New("console: review outcome missing"))
	}
	v := site.ViewerFrom(r.Context())
	_, err := desk.Close(r.Context(), consoleAgent(r, v), requestID(r), r.PathValue("rid"), outcome, r.PostForm.Get("note"))
	if errors.Is(err, authz.ErrBadRequest) {
		return site.PageErr(http.StatusBadRequest, "Check the note", "The note must be text of at most 2,000 characters.", err)
	}
	if err != nil {
		return u.consoleErr(err)
	}
	return site.Redirect(w, r, "/admin/reviews?done=closed")
}
