package chart

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Signing and amending notes (ADR 0035). A note is saved as a draft
// (docStatus preliminary) or signed at once; its author signs a draft
// (docStatus final, authenticator: the signer). A signed note is never
// edited: the record service refuses any change but its status and
// meta, on every path (the FHIR API included). It is amended by an
// addendum: a new signed DocumentReference whose relatesTo "appends"
// the note, shown beneath it in the chart.

// errNotThisPatient is readOwn's answer for a resource that does not
// exist, is hidden, or belongs to another patient's record.
var errNotThisPatient = errors.New("chart: not a resource of this patient")

// readOwn reads typ/id as the viewer, and only if its subject is
// patient pid (else errNotThisPatient).
func (u *UI) readOwn(r *http.Request, pid, typ, id string) (record.Stored, error) {
	if !record.ValidID(id) {
		return record.Stored{}, errNotThisPatient
	}
	st, err := u.rec.Read(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), typ, id)
	if err != nil {
		var re *record.Error
		if errors.As(err, &re) {
			switch record.StatusCode(re) {
			case http.StatusNotFound, http.StatusForbidden, http.StatusGone:
				// Another patient's, hidden, or erased: one answer, so
				// an id in the URL tells nothing (the refusal is audited
				// by the record).
				return record.Stored{}, errNotThisPatient
			}
		}
		return record.Stored{}, err
	}
	var d chartview.Obj
	if err := json.Unmarshal(st.JSON, &d); err != nil {
		return record.Stored{}, err
	}
	if d.Obj("subject").Str("reference") != ident.PatientRef(pid).String() {
		return record.Stored{}, errNotThisPatient
	}
	return st, nil
}

// noteOf reads note nid of patient pid as the viewer: the
// DocumentReference, or a page error (404 when it is not this
// patient's note).
func (u *UI) noteOf(r *http.Request, pid, nid string) (record.Stored, chartview.Obj, error) {
	st, err := u.readOwn(r, pid, "DocumentReference", nid)
	if err != nil {
		if errors.Is(err, errNotThisPatient) {
			return record.Stored{}, nil, site.PageErr(http.StatusNotFound, "Not found", "There is no such note in this record.", err)
		}
		return record.Stored{}, nil, err
	}
	var d chartview.Obj
	if err := json.Unmarshal(st.JSON, &d); err != nil {
		return record.Stored{}, nil, err
	}
	return st, d, nil
}

// signNote signs a draft note of the viewer's.
func (u *UI) signNote(w http.ResponseWriter, r *http.Request) error {
	pid, nid, st, d, ok, err := u.ownDraftNote(w, r)
	if !ok {
		return err
	}
	d["docStatus"] = "final"
	d["authenticator"] = u.author(r)
	return u.saveNote(w, r, pid, nid, d, st.Version)
}

// editDraft changes the title and text of a draft note of the viewer's
// (a signed note is never edited: the record service would refuse it).
func (u *UI) editDraft(w http.ResponseWriter, r *http.Request) error {
	title := strings.TrimSpace(r.PostForm.Get("title"))
	text := strings.TrimSpace(strings.ReplaceAll(r.PostForm.Get("text"), "\r\n", "\n"))
	switch {
	case text == "":
		return site.PageErr(http.StatusBadRequest, "Nothing to save", "Write the note before saving it.", errors.New("draft: empty"))
	case len(text) > maxNoteLen || len(title) > maxNoteTitle:
		return site.PageErr(http.StatusBadRequest, "Too long", "The note is at most 32 KiB and its title at most 200 characters.", errors.New("draft: too long"))
	case !utf8.ValidString(text) || !utf8.ValidString(title):
		return site.PageErr(http.StatusBadRequest, "Not text", "The note contains characters that are not text.", errors.New("draft: not utf-8"))
	}
	pid, nid, st, d, ok, err := u.ownDraftNote(w, r)
	if !ok {
		return err
	}
	title = noteTitle(title)
	d["description"] = title
	d["content"] = []any{map[string]any{"attachment": map[string]any{
		"contentType": "text/plain; charset=utf-8", "title": title,
		"data": base64.StdEncoding.EncodeToString([]byte(text)),
	}}}
	return u.saveNote(w, r, pid, nid, d, st.Version)
}

// ownDraftNote reads the note of the request's path ({id}, {nid}) when
// it is a draft of the viewer's; ok is false when the answer is err (a
// page error, or nil when checkPatient answered).
func (u *UI) ownDraftNote(w http.ResponseWriter, r *http.Request) (pid, nid string, st record.Stored, d chartview.Obj, ok bool, err error) {
	pid, ok, err = u.checkPatient(w, r)
	if !ok {
		return "", "", record.Stored{}, nil, false, err
	}
	nid = r.PathValue("nid")
	if st, d, err = u.noteOf(r, pid, nid); err != nil {
		return "", "", record.Stored{}, nil, false, err
	}
	if err := u.ownDraft(r, d); err != nil {
		return "", "", record.Stored{}, nil, false, err
	}
	return pid, nid, st, d, true, nil
}

// saveNote writes note nid of pid (If-Match version) and returns to it
// in the chart.
func (u *UI) saveNote(w http.ResponseWriter, r *http.Request, pid, nid string, d chartview.Obj, version int64) error {
	if err := u.write(r, "DocumentReference", nid, d, version); err != nil {
		return err
	}
	return site.Redirect(w, r, "/patients/"+pid+"#note-"+nid)
}

// ownDraft refuses a note that is not a draft of the viewer's.
func (u *UI) ownDraft(r *http.Request, d chartview.Obj) error {
	v := site.ViewerFrom(r.Context())
	switch {
	case d.Str("docStatus") != "preliminary":
		return site.PageErr(http.StatusConflict, "Already signed", "This note is not a draft: it is signed already. Add an addendum to amend it.", errors.New("not a draft"))
	case v.FHIRUser == "" || chartview.NoteRows([]chartview.Obj{d})[0].AuthorRef != v.FHIRUser:
		return site.PageErr(http.StatusForbidden, "Not your note", "Only the author of a draft changes or signs it.", errors.New("not the author"))
	}
	return nil
}

// addAddendum amends a signed note with an addendum.
func (u *UI) addAddendum(w http.ResponseWriter, r *http.Request) error {
	text := strings.TrimSpace(strings.ReplaceAll(r.PostForm.Get("text"), "\r\n", "\n"))
	switch {
	case text == "":
		return site.PageErr(http.StatusBadRequest, "Nothing to add", "Write the addendum before saving it.", errors.New("addendum: empty"))
	case len(text) > maxNoteLen:
		return site.PageErr(http.StatusBadRequest, "Too long", "The addendum is longer than 32 KiB.", errors.New("addendum: too long"))
	case !utf8.ValidString(text):
		return site.PageErr(http.StatusBadRequest, "Not text", "The addendum contains characters that are not text.", errors.New("addendum: not utf-8"))
	}
	pid, ok, err := u.checkPatient(w, r)
	if !ok {
		return err
	}
	nid := r.PathValue("nid")
	_, d, err := u.noteOf(r, pid, nid)
	if err != nil {
		return err
	}
	if s := d.Str("docStatus"); s != "final" && s != "amended" {
		return site.PageErr(http.StatusConflict, "Not signed yet", "This note is a draft: sign it first. Addenda amend signed notes.", errors.New("addendum: target not signed"))
	}
	title := "Addendum"
	if t := d.Str("description"); t != "" {
		title = "Addendum to " + t
		if len(title) > maxNoteTitle {
			title = title[:maxNoteTitle]
			for !utf8.ValidString(title) {
				title = title[:len(title)-1]
			}
		}
	}
	add := map[string]any{
		"resourceType":  "DocumentReference",
		"status":        "current",
		"docStatus":     "final",
		"type":          d["type"],
		"category":      d["category"],
		"subject":       map[string]any{"reference": ident.PatientRef(pid).String()},
		"date":          u.now().UTC().Format(time.RFC3339),
		"author":        []any{u.author(r)},
		"authenticator": u.author(r),
		"description":   title,
		"relatesTo":     []any{map[string]any{"code": "appends", "target": map[string]any{"reference": "DocumentReference/" + nid}}},
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "text/plain; charset=utf-8", "title": title,
			"data": base64.StdEncoding.EncodeToString([]byte(text)),
		}}},
	}
	msg, err := u.create(r, add)
	if err != nil {
		return err
	}
	if msg != "" {
		return site.PageErr(http.StatusUnprocessableEntity, "Not saved", msg, errors.New("addendum refused by the record"))
	}
	return site.Redirect(w, r, "/patients/"+pid+"#note-"+nid)
}

// write updates typ/id with res as the viewer, at version ifMatch; a
// refusal by the record becomes a plain page.
func (u *UI) write(r *http.Request, typ, id string, res map[string]any, ifMatch int64) error {
	body, err := json.Marshal(res)
	if err != nil {
		return err
	}
	var parsed fhir.Resource
	parsed, err = u.rec.Parse(body)
	if err == nil {
		_, _, err = u.rec.Update(r.Context(), site.Caller(r, site.ViewerFrom(r.Context())), typ, id, parsed, ifMatch)
	}
	var re *record.Error
	if errors.As(err, &re) {
		switch record.StatusCode(re) {
		case http.StatusPreconditionFailed, http.StatusConflict:
			return site.PageErr(http.StatusConflict, "Changed meanwhile", "Someone changed this record meanwhile. Open it again and retry.", err)
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			var parts []string
			for _, is := range re.Issues {
				parts = append(parts, is.Diagnostic)
			}
			return site.PageErr(http.StatusUnprocessableEntity, "Not saved", "It was not saved: "+strings.Join(parts, "; "), err)
		case http.StatusForbidden:
			return site.PageErr(http.StatusForbidden, "Not allowed", "Your access does not allow this change.", err)
		}
	}
	return err
}
