package portal

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// The right to amend (HIPAA §164.526): "Ask for a correction" in the
// portal (which part of the record, what is wrong, what it should say),
// the privacy office's queue at /privacy/corrections where each request
// is accepted or denied with a reason, and the patient's list of their
// requests with each decision. The care team sees the requests on the
// chart (package chart). The use-case is privacy.Amendments: texts
// sealed with the patient's key, every change and every read audited.

// Amendments is the correction requests' use-case (privacy.Amendments).
type Amendments interface {
	Create(ctx context.Context, by privacy.Actor, n privacy.NewAmendment) (storage.Amendment, error)
	List(ctx context.Context, by privacy.Actor, patient string, open bool, limit int) ([]privacy.Opened, error)
	Decide(ctx context.Context, by privacy.Actor, id string, accept bool, reason string) error
}

// maxCorrections bounds a list of requests (the patient's own, or the
// privacy office's open queue).
const maxCorrections = 100

type partOption struct {
	Code, Words string
	Selected    bool
}

type correctionRow struct {
	ID, Part, Wrong, Should, Reason, State string
	PatientRef, PatientName                string
	Created, Decided                       time.Time
	Unreadable                             bool
}

type correctionsView struct {
	Parts        []partOption
	Part         string
	Wrong        string
	Should       string
	Error        string
	Sent         bool
	Decided      bool
	Rows         []correctionRow
	DisagreeWith string // the denied request a statement of disagreement answers
}

func (u *UI) amendReady() error {
	if u.amend == nil {
		return site.PageErr(http.StatusServiceUnavailable, "Not available", "Correction requests cannot be handled on this server right now. Contact the privacy office.", errors.New("no amendments service"))
	}
	return nil
}

func partOptions(sel string) []partOption {
	out := make([]partOption, 0, len(privacy.AmendmentParts))
	for _, p := range privacy.AmendmentParts {
		out = append(out, partOption{Code: p.Code, Words: p.Words, Selected: p.Code == sel})
	}
	return out
}

func correctionRows(os []privacy.Opened) []correctionRow {
	rows := make([]correctionRow, 0, len(os))
	for _, o := range os {
		rows = append(rows, correctionRow{ID: o.ID, Part: privacy.PartWords(o.Part), Wrong: o.Wrong, Should: o.Should, Reason: o.Reason, State: o.State,
			PatientRef: o.Patient, Created: o.Created, Decided: o.Decided, Unreadable: o.Unreadable})
	}
	return rows
}

func (u *UI) correctionsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.amendReady(); err != nil {
		return err
	}
	view := correctionsView{Sent: r.URL.Query().Get("sent") == "1"}
	if p := r.URL.Query().Get("part"); privacy.PartWords(p) != "" {
		view.Part = p // a code of the list ("disagreement" from a denial), not PHI
	}
	return u.renderCorrections(w, r, http.StatusOK, view)
}

func (u *UI) renderCorrections(w http.ResponseWriter, r *http.Request, status int, view correctionsView) error {
	v := site.ViewerFrom(r.Context())
	pid, _ := ownPatient(v)
	c := portalCaller(r, v)
	os, err := u.amend.List(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: status},
		ident.PatientRef(pid).String(), false, maxCorrections)
	if errors.Is(err, audit.ErrUnavailable) {
		return auditUnavailable(err)
	}
	if err != nil {
		return err
	}
	view.Rows = correctionRows(os)
	view.Parts = partOptions(view.Part)
	u.site.Render(w, r, status, "portal-corrections", site.PageData{Title: "Ask for a correction", Viewer: v, Nav: "portal", Data: view})
	return nil
}

func (u *UI) correctionSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := u.amendReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	pid, _ := ownPatient(v)
	f := r.PostForm
	n := privacy.NewAmendment{Patient: ident.PatientOwner(pid), Requester: v.P.ID, Part: f.Get("part"), Wrong: f.Get("wrong"), Should: f.Get("should")}
	c := portalCaller(r, v)
	_, err := u.amend.Create(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusSeeOther}, n)
	if errors.Is(err, privacy.ErrAmendment) {
		return u.renderCorrections(w, r, http.StatusBadRequest, correctionsView{Part: n.Part, Wrong: n.Wrong, Should: n.Should, Error: err.Error()})
	}
	if errors.Is(err, audit.ErrUnavailable) {
		return auditUnavailable(err)
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/portal/corrections?sent=1")
}

// The privacy office's queue.

func (u *UI) correctionsQueue(w http.ResponseWriter, r *http.Request) error {
	if err := u.amendReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	os, err := u.amend.List(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusOK}, "", true, maxCorrections)
	if errors.Is(err, audit.ErrUnavailable) {
		return auditUnavailable(err)
	}
	if err != nil {
		return err
	}
	view := correctionsView{Rows: correctionRows(os), Decided: r.URL.Query().Get("decided") == "1"}
	// The patients' names, in one audited search (demographics only).
	named := make([]reportRow, len(view.Rows))
	for i, x := range view.Rows {
		named[i].Patient = x.PatientRef
	}
	names := u.patientNames(r, c, named)
	for i := range view.Rows {
		view.Rows[i].PatientName = names[view.Rows[i].PatientRef]
	}
	u.site.Render(w, r, http.StatusOK, "privacy-corrections", site.PageData{Title: "Correction requests", Viewer: v, Nav: "privacy", Data: view})
	return nil
}

func (u *UI) correctionDecide(w http.ResponseWriter, r *http.Request) error {
	if err := u.amendReady(); err != nil {
		return err
	}
	v := site.ViewerFrom(r.Context())
	c := site.Caller(r, v)
	c.Purpose = "HOPERAT"
	var accept bool
	switch r.PostForm.Get("decision") {
	case "accept":
		accept = true
	case "deny":
	default:
		return site.PageErr(http.StatusBadRequest, "Choose a decision", "Accept or deny the request, then send the decision.", errors.New("no decision"))
	}
	err := u.amend.Decide(r.Context(), privacy.Actor{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID, Status: http.StatusSeeOther},
		r.PathValue("aid"), accept, strings.TrimSpace(r.PostForm.Get("reason")))
	switch {
	case errors.Is(err, privacy.ErrAmendment):
		return site.PageErr(http.StatusBadRequest, "Check the reason", err.Error()+" A denial states its reason, which the patient reads. Go back and write it.", err)
	case errors.Is(err, storage.ErrNotFound):
		return site.PageErr(http.StatusNotFound, "Not found", "There is no such correction request.", err)
	case errors.Is(err, storage.ErrConflict):
		return site.Redirect(w, r, "/privacy/corrections?decided=1") // decided meanwhile
	case errors.Is(err, audit.ErrUnavailable):
		return auditUnavailable(err)
	case err != nil:
		return err
	}
	return site.Redirect(w, r, "/privacy/corrections?decided=1")
}
