package chart

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Documents shown in the chart (ADR 0035): a DocumentReference's PDF or
// image attachment is served from a same-origin URL,
// /patients/{id}/documents/{did}/content/{n}, never as a data: URL. The
// DocumentReference is read as the viewer through the record service
// (decided and audited) and must be this patient's; the attachment's
// declared type must be one of docTypes, and is sent exactly, with
// nosniff, so the browser never guesses another type (an HTML "PDF"
// stays inert). The answer carries its own CSP: nothing runs, it loads
// nothing, and only the UI itself may frame it (the chart shows PDFs in
// an iframe, images in an img).

// docTypes are the attachment types served, with a file extension.
var docTypes = map[string]string{
	"application/pdf": "pdf",
	"image/png":       "png",
	"image/jpeg":      "jpg",
	"image/gif":       "gif",
	"image/webp":      "webp",
}

// docCSP is the policy of a served attachment. object-src 'self' lets
// the browser's PDF viewer embed the document in its own viewer page;
// inline styles are the browser's image viewer's.
const docCSP = "default-src 'none'; object-src 'self'; img-src 'self'; style-src 'unsafe-inline'; " +
	"frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

// maxDocBytes bounds a served attachment (decoded).
const maxDocBytes = 20 << 20

// documentContent serves attachment n of document did of patient id.
func (u *UI) documentContent(w http.ResponseWriter, r *http.Request) error {
	pid, did := r.PathValue("id"), r.PathValue("did")
	notFound := site.PageErr(http.StatusNotFound, "Not found", "There is no such document in this record.", errors.New("document not found"))
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n > 100 {
		return notFound
	}
	st, err := u.readOwn(r, pid, "DocumentReference", did)
	if errors.Is(err, errNotThisPatient) {
		return notFound
	}
	if chartview.Denied(err) {
		u.renderDenied(w, r, pid)
		return nil
	}
	if err != nil {
		return err
	}
	var d chartview.Obj
	if err := json.Unmarshal(st.JSON, &d); err != nil {
		return err
	}
	contents := d.List("content")
	if n >= len(contents) {
		return notFound
	}
	a := contents[n].Obj("attachment")
	typ, _, err := mime.ParseMediaType(a.Str("contentType"))
	ext, ok := docTypes[typ]
	if err != nil || !ok || a.Str("data") == "" {
		return site.PageErr(http.StatusNotFound, "Not shown here", "This attachment is not a PDF or an image stored in the record.", errors.New("attachment type not served"))
	}
	if base64.StdEncoding.DecodedLen(len(a.Str("data"))) > maxDocBytes {
		return site.PageErr(http.StatusRequestEntityTooLarge, "Too large", "This attachment is too large to show here.", errors.New("attachment too large"))
	}
	b, err := base64.StdEncoding.DecodeString(a.Str("data"))
	if err != nil {
		return site.PageErr(http.StatusUnprocessableEntity, "Unreadable", "This attachment could not be read.", err)
	}
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Content-Security-Policy", docCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Disposition", `inline; filename="document.`+ext+`"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
