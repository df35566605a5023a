package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
)

// Binary with raw content (R4 binary.html §"Serving Binary Resources
// using the RESTful API"): a read of a Binary whose Accept names no FHIR
// format returns the bytes themselves with Binary.contentType, and a
// create or update whose Content-Type is not FHIR stores the body as a
// Binary. Both go through the same record calls as the FHIR forms
// (authorization, masking, audit). Content served raw could be active
// (HTML, SVG, script) and is served from the FHIR API's origin: it is
// sandboxed by CSP, never sniffed, and only a short list of passive types
// is shown inline; everything else is an attachment.

// securityContextHeader names the resource a raw Binary takes its
// access from (Binary.securityContext), as HAPI FHIR spells it.
const securityContextHeader = "X-Security-Context"

// inlineTypes are the passive types a browser may render in place.
var inlineTypes = map[string]bool{
	"text/plain": true, "image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
}

// isFHIRMedia reports whether mt is a FHIR JSON media type.
func isFHIRMedia(mt string) bool {
	switch mt {
	case mediaFHIRJSON, mediaJSON, "application/json+fhir":
		return true
	}
	return false
}

// binaryPath reports whether path is /fhir/Binary or /fhir/Binary/{id}
// (or a version of it).
func binaryPath(path string) bool {
	return path == "/fhir/Binary" || strings.HasPrefix(path, "/fhir/Binary/")
}

// wantsRaw reports whether a read's Accept asks for the content itself:
// it names a concrete type and no FHIR one (a bare */* gets FHIR JSON),
// and no _format asks for JSON.
func wantsRaw(r *http.Request) bool {
	if r.URL.Query().Get("_format") != "" {
		return false
	}
	concrete := false
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case isFHIRMedia(mt):
			return false
		case mt != "*/*" && mt != "application/*":
			concrete = true
		}
	}
	return concrete
}

// rawBody reports whether a create or update of a Binary sends raw
// content: a Content-Type that is not FHIR.
func rawBody(r *http.Request) (string, bool) {
	if r.PathValue("type") != "Binary" {
		return "", false
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || isFHIRMedia(mt) {
		return "", false
	}
	return ct, true
}

// binaryResource wraps raw content as a Binary resource (validated like
// any body).
func (s *Server) binaryResource(r *http.Request, ct string, b []byte) (fhir.Resource, error) {
	res := map[string]any{"resourceType": "Binary", "contentType": ct, "data": base64.StdEncoding.EncodeToString(b)}
	if id := r.PathValue("id"); id != "" {
		res["id"] = id
	}
	if sc := strings.TrimSpace(r.Header.Get(securityContextHeader)); sc != "" {
		res["securityContext"] = map[string]any{"reference": sc}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, httpError(http.StatusBadRequest, "structure", "the Binary could not be encoded")
	}
	return s.rec.Parse(body)
}

// writeRawBinary answers a read of a Binary with its content.
func writeRawBinary(w http.ResponseWriter, st record.Stored, body []byte) error {
	var bin struct {
		ContentType string `json:"contentType"`
		Data        string `json:"data"`
	}
	if err := json.Unmarshal(body, &bin); err != nil {
		return httpError(http.StatusInternalServerError, "exception", "the Binary could not be read")
	}
	data, err := base64.StdEncoding.DecodeString(bin.Data)
	if err != nil {
		return httpError(http.StatusInternalServerError, "exception", "the Binary's data is not base64")
	}
	mt, params, err := mime.ParseMediaType(bin.ContentType)
	ct := "application/octet-stream"
	if err == nil {
		ct = mime.FormatMediaType(mt, params)
	}
	h := w.Header()
	setVersionHeaders(w, st)
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	// sandbox: a document rendered from here runs no script, submits no
	// form and gets an opaque origin (no cookies, no same-origin calls).
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if inlineTypes[mt] {
		h.Set("Content-Disposition", "inline")
	} else {
		h.Set("Content-Disposition", "attachment")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}
