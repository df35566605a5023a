package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

func (s *Server) fhirRoutes(mux *http.ServeMux) {
	mux.Handle("POST /fhir", s.handle(s.bundle))
	mux.Handle("POST /fhir/{$}", s.handle(s.bundle))
	mux.Handle("GET /fhir/_history", s.handle(s.history))
	mux.Handle("GET /fhir/{type}", s.handle(auditapi.Or(s.search, s.auditLog.Search)))
	mux.Handle("POST /fhir/{type}/_search", s.handle(auditapi.Or(s.search, auditapi.Refuse)))
	mux.Handle("POST /fhir/{type}", s.handle(auditapi.Or(s.create, auditapi.Refuse)))
	mux.Handle("GET /fhir/{type}/_history", s.handle(auditapi.Or(s.history, auditapi.Refuse)))
	mux.Handle("GET /fhir/{type}/{id}", s.handle(auditapi.Or(s.read, s.auditLog.Read)))
	mux.Handle("PUT /fhir/{type}/{id}", s.handle(auditapi.Or(s.update, auditapi.Refuse)))
	mux.Handle("DELETE /fhir/{type}/{id}", s.handle(auditapi.Or(s.delete, auditapi.Refuse)))
	mux.Handle("GET /fhir/{type}/{id}/_history", s.handle(auditapi.Or(s.history, auditapi.Refuse)))
	mux.Handle("GET /fhir/{type}/{id}/_history/{vid}", s.handle(auditapi.Or(s.vread, auditapi.Refuse)))
	// PATCH, conditional update/delete/patch, $meta (fhir_patch.go).
	for _, rt := range []struct {
		pattern string
		h       web.HandlerFunc
	}{
		{"PATCH /fhir/{type}/{id}", s.patch}, {"PATCH /fhir/{type}", s.patch},
		{"PUT /fhir/{type}", s.update}, {"DELETE /fhir/{type}", s.conditionalDelete},
		{"GET /fhir/$meta", s.meta}, {"GET /fhir/{type}/$meta", s.meta}, {"GET /fhir/{type}/{id}/$meta", s.meta},
		{"POST /fhir/{type}/{id}/$meta", s.meta},
		{"POST /fhir/{type}/{id}/$meta-add", s.metaEdit(false)}, {"POST /fhir/{type}/{id}/$meta-delete", s.metaEdit(true)},
	} {
		mux.Handle(rt.pattern, s.handle(auditapi.Or(rt.h, auditapi.Refuse)))
	}
	mux.Handle("GET /fhir/Patient/{id}/$everything", s.handle(s.everything))
	mux.Handle("POST /fhir/Patient/{id}/$everything", s.handle(s.everything))
	mux.Handle("POST /fhir/Patient/{id}/$erase", s.handle(s.erase))
	mux.Handle("GET /fhir/AuditEvent/{id}/$proof", s.handle(s.auditLog.Proof))
	mux.Handle("POST /fhir/Patient/{id}/$break-glass", s.handle(s.breakGlass))
	// System-wide and compartment search (search_system.go).
	mux.Handle("GET /fhir", s.handle(s.systemSearch))
	mux.Handle("GET /fhir/{$}", s.handle(s.systemSearch))
	mux.Handle("POST /fhir/_search", s.handle(s.systemSearch))
	mux.Handle("GET /fhir/{type}/{id}/{ctype}", s.handle(s.compartmentSearch))
	s.subscriptionRoutes(mux)
	s.bulkRoutes(mux)        // bulk.go: $export, its status and files
	s.terminologyRoutes(mux) // terminology.go: $lookup, $expand, $validate-code, $validate
	unknown := s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return httpError(http.StatusNotFound, "not-supported", "unknown FHIR endpoint or method")
	})
	mux.Handle("/fhir", unknown)
	mux.Handle("/fhir/", unknown)
}

// caller builds the audit identity of a request.
func (s *Server) caller(r *http.Request) record.Caller {
	p, _ := PrincipalFrom(r.Context())
	return s.callerFor(r, p)
}

// callerFor is the audit identity of p making request r.
func (s *Server) callerFor(r *http.Request, p authn.Principal) record.Caller {
	role := ""
	if len(p.Roles) > 0 {
		role = strings.Join(p.Roles, ",")
	}
	client := string(p.Kind)
	if p.Client != "" {
		client = p.Client // a SMART app: its client_id
	}
	return record.Caller{
		Agent:     audit.Agent{User: p.ID, Role: role, Client: client, Session: p.SessionID, Address: web.ClientIP(r)},
		Purpose:   authz.PurposeOf(p.Roles),
		RequestID: web.RequestID(r.Context()),
		Guard:     guardFrom(r.Context()),
	}
}

// resourceType checks the {type} path value: 404 for non-R4 names.
func resourceType(r *http.Request) (string, error) {
	t := r.PathValue("type")
	if !fhir.IsR4Type(t) {
		return "", httpError(http.StatusNotFound, "not-supported", "unknown or non-R4 resource type")
	}
	return t, nil
}

func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !record.ValidID(id) {
		return "", httpError(http.StatusBadRequest, "invalid", "the id is not a valid FHIR id")
	}
	return id, nil
}

// typeAndID checks the {type} and {id} path values.
func typeAndID(r *http.Request) (typ, id string, err error) {
	if typ, err = resourceType(r); err != nil {
		return "", "", err
	}
	if id, err = pathID(r); err != nil {
		return "", "", err
	}
	return typ, id, nil
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, httpError(http.StatusRequestEntityTooLarge, "too-costly", "the request body is larger than the server accepts")
		}
		if errBodyTooSlow(err) {
			return nil, httpError(http.StatusRequestTimeout, "timeout", "the request body arrived too slowly")
		}
		return nil, httpError(http.StatusBadRequest, "structure", "the request body could not be read")
	}
	if len(b) == 0 {
		return nil, httpError(http.StatusBadRequest, "structure", "a FHIR JSON body is required")
	}
	return b, nil
}

func (s *Server) parseBody(r *http.Request) (fhir.Resource, error) {
	b, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	if ct, raw := rawBody(r); raw {
		return s.binaryResource(r, ct, b) // binary.go
	}
	return s.rec.Parse(b)
}

// preferReturn reads Prefer: return=...; the default is representation.
func preferReturn(r *http.Request) record.Return {
	for _, p := range strings.Split(r.Header.Get("Prefer"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.TrimSpace(k) != "return" {
			continue
		}
		switch strings.Trim(strings.TrimSpace(v), `"`) {
		case "minimal":
			return record.ReturnMinimal
		case "OperationOutcome":
			return record.ReturnOutcome
		}
	}
	return record.ReturnRepresentation
}

// lenient reports Prefer: handling=lenient (unknown search parameters
// are ignored instead of refused).
func lenient(r *http.Request) bool {
	for _, p := range strings.Split(r.Header.Get("Prefer"), ",") {
		if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == "handling=lenient" {
			return true
		}
	}
	return false
}

func setVersionHeaders(w http.ResponseWriter, st record.Stored) {
	w.Header().Set("ETag", record.ETag(st.Version))
	w.Header().Set("Last-Modified", st.LastUpdated.UTC().Format(http.TimeFormat))
}

func (s *Server) location(st record.Stored) string {
	return s.baseURL + "/fhir/" + st.Type + "/" + st.ID + "/_history/" + strconv.FormatInt(st.Version, 10)
}

// writeStored answers a write according to Prefer.
func (s *Server) writeStored(w http.ResponseWriter, r *http.Request, status int, st record.Stored, msg string) {
	setVersionHeaders(w, st)
	if status == http.StatusCreated {
		w.Header().Set("Location", s.location(st))
	}
	switch preferReturn(r) {
	case record.ReturnMinimal:
		w.WriteHeader(status)
	case record.ReturnOutcome:
		writeJSON(w, r, status, record.Informational(msg))
	default:
		writeBody(w, r, status, st.JSON)
	}
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := typeAndID(r)
	if err != nil {
		return err
	}
	st, err := s.rec.Read(r.Context(), s.caller(r), typ, id)
	if err != nil {
		if errors.Is(err, record.ErrGone) && st.Version > 0 {
			setVersionHeaders(w, st)
		}
		return err
	}
	if notModified(r, st) {
		setVersionHeaders(w, st)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if typ == "Binary" && wantsRaw(r) {
		return writeRawBinary(w, st, st.JSON) // binary.go
	}
	body, err := s.rec.Represent(st.JSON, r.URL.Query())
	if err != nil {
		return err
	}
	setVersionHeaders(w, st)
	writeBody(w, r, http.StatusOK, body)
	return nil
}

// notModified honours If-None-Match and If-Modified-Since on reads.
func notModified(r *http.Request, st record.Stored) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		v, err := record.ParseETag(inm)
		return err == nil && v == st.Version
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !st.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

func (s *Server) vread(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := typeAndID(r)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(r.PathValue("vid"), 10, 64)
	if err != nil || v < 1 {
		return httpError(http.StatusBadRequest, "invalid", "the version id must be a positive integer")
	}
	st, err := s.rec.VRead(r.Context(), s.caller(r), typ, id, v)
	if err != nil {
		return err
	}
	if typ == "Binary" && wantsRaw(r) {
		return writeRawBinary(w, st, st.JSON)
	}
	body, err := s.rec.Represent(st.JSON, r.URL.Query())
	if err != nil {
		return err
	}
	setVersionHeaders(w, st)
	writeBody(w, r, http.StatusOK, body)
	return nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r)
	if err != nil {
		return err
	}
	res, err := s.parseBody(r)
	if err != nil {
		return err
	}
	if res.Type() != typ {
		return httpError(http.StatusBadRequest, "invalid", "the resourceType in the body does not match the URL")
	}
	st, created, err := s.rec.Create(r.Context(), s.caller(r), res, r.Header.Get("If-None-Exist"))
	if err != nil {
		return err
	}
	if !created {
		s.writeStored(w, r, http.StatusOK, st, "a matching resource already exists; nothing was created")
		return nil
	}
	s.writeStored(w, r, http.StatusCreated, st, "created")
	return nil
}

// update is PUT Type/id, or PUT Type?query (conditional update).
func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	typ, id, q, err := writeTarget(r)
	if err != nil {
		return err
	}
	im, err := ifMatch(r)
	if err != nil {
		return err
	}
	res, err := s.parseBody(r)
	if err != nil {
		return err
	}
	var st record.Stored
	var created bool
	if id != "" {
		st, created, err = s.rec.Update(r.Context(), s.caller(r), typ, id, res, im)
	} else {
		st, created, err = s.rec.ConditionalUpdate(r.Context(), s.caller(r), typ, q, res, im)
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.writeStored(w, r, status, st, "updated")
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := typeAndID(r)
	if err != nil {
		return err
	}
	if err := s.rec.Delete(r.Context(), s.caller(r), typ, id); err != nil {
		return err
	}
	if preferReturn(r) == record.ReturnOutcome {
		writeJSON(w, r, http.StatusOK, record.Informational("deleted"))
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) bundle(w http.ResponseWriter, r *http.Request) error {
	res, err := s.parseBody(r)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(r.Context()); bundleScopeGate(p, res) != nil {
		return httpError(http.StatusForbidden, "forbidden", "the access token's scopes do not allow every entry of this Bundle")
	}
	out, err := s.rec.ProcessBundle(r.Context(), s.caller(r), res, preferReturn(r))
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, out)
	return nil
}

// searchValues returns the query parameters of a GET search, or the
// form body of POST _search merged with the URL query.
func searchValues(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, httpError(http.StatusBadRequest, "invalid", "the search form could not be parsed")
	}
	return r.Form, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r)
	if err != nil {
		return err
	}
	vals, err := searchValues(r)
	if err != nil {
		return err
	}
	page, err := s.rec.Search(r.Context(), s.caller(r), typ, vals, record.SearchOptions{Lenient: lenient(r), BaseURL: s.baseURL + "/fhir"})
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, page.Bundle)
	return nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	if typ != "" {
		var err error
		if typ, err = resourceType(r); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	if id != "" && !record.ValidID(id) {
		return httpError(http.StatusBadRequest, "invalid", "the id is not a valid FHIR id")
	}
	out, err := s.rec.History(r.Context(), s.caller(r), typ, id, r.URL.Query(), record.SearchOptions{Lenient: lenient(r), BaseURL: s.baseURL + "/fhir"})
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, out)
	return nil
}

func (s *Server) everything(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	vals, err := searchValues(r)
	if err != nil {
		return err
	}
	out, err := s.rec.Everything(r.Context(), s.caller(r), id, vals, s.baseURL+"/fhir")
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, out)
	return nil
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	n, err := s.rec.Erase(r.Context(), s.caller(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, r, http.StatusOK, record.Informational("patient erased: its data key was destroyed and "+strconv.FormatInt(n, 10)+" resources are no longer readable; the audit trail is kept"))
	return nil
}
