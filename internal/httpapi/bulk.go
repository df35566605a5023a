package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/bulk"
	"github.com/phivault/phivault/internal/web"
)

// FHIR Bulk Data Access IG v2 (https://hl7.org/fhir/uv/bulkdata/):
// kick-off at [base]/$export, [base]/Patient/$export and
// [base]/Group/[id]/$export (GET or POST, Prefer: respond-async), the
// status URL [base]/$export-poll?job=[job] (GET: 202 with X-Progress and
// Retry-After while running, 200 with the manifest when done, an
// OperationOutcome when failed; DELETE: 202 and the job is gone) and
// the files [base]/$export-file?job=[job]&n=[n] (application/fhir+ndjson).
// Only the SMART backend client that started a job sees its status and
// files: anyone else gets 404. The work is package bulk's (ADR 0049).

// Retry-After values (seconds).
const (
	bulkRetryRunning = "2"  // poll interval while a job runs
	bulkRetryBusy    = "60" // 429: the client's jobs are all in progress
)

func (s *Server) bulkRoutes(mux *http.ServeMux) {
	if s.bulk == nil {
		return
	}
	for _, m := range []string{"GET", "POST"} {
		mux.Handle(m+" /fhir/$export", s.handle(s.bulkKickoff(bulk.LevelSystem)))
		mux.Handle(m+" /fhir/Patient/$export", s.handle(s.bulkKickoff(bulk.LevelPatient)))
		mux.Handle(m+" /fhir/Group/{id}/$export", s.handle(s.bulkKickoff(bulk.LevelGroup)))
	}
	// The job and file are query parameters: a path segment after a
	// literal one would collide with the FHIR routes ({type}/_history).
	mux.Handle("GET /fhir/$export-poll", s.handle(s.bulkStatus))
	mux.Handle("DELETE /fhir/$export-poll", s.handle(s.bulkDelete))
	mux.Handle("GET /fhir/$export-file", s.handle(s.bulkFile))
}

// bulkPath reports whether a /fhir path (split in segments) is one of
// the bulk endpoints, whose scopes bulk.go checks itself.
func bulkPath(parts []string) bool {
	switch {
	case len(parts) >= 1 && (parts[0] == "$export" || parts[0] == "$export-poll" || parts[0] == "$export-file"):
		return true
	case len(parts) == 2 && parts[0] == "Patient" && parts[1] == "$export":
		return true
	case len(parts) == 3 && parts[0] == "Group" && parts[2] == "$export":
		return true
	}
	return false
}

// bulkFilePath reports whether path is an export file (served as
// application/fhir+ndjson, whatever JSON Accept says).
func bulkFilePath(path string) bool { return path == "/fhir/$export-file" }

func (s *Server) bulkCaller(r *http.Request) bulk.Caller {
	p, _ := PrincipalFrom(r.Context())
	c := s.callerFor(r, p)
	return bulk.Caller{Principal: p, Agent: c.Agent, RequestID: c.RequestID}
}

// respondAsync reports whether the request's Prefer header asks for
// respond-async (required by the IG).
func respondAsync(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(h, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
				return true
			}
		}
	}
	return false
}

func (s *Server) bulkKickoff(level bulk.Level) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		group := ""
		if level == bulk.LevelGroup {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			group = id
		}
		if !respondAsync(r) {
			return httpError(http.StatusBadRequest, "invalid", "$export needs the header Prefer: respond-async")
		}
		var body []byte
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, bulk.MaxBodyBytes))
			if err != nil {
				return httpError(http.StatusRequestEntityTooLarge, "too-costly", "the Parameters body is larger than the server accepts")
			}
			body = b
		}
		req, err := bulk.ParseKickoff(level, group, r.URL.Query(), body, lenient(r))
		if err != nil {
			return bulkError(err)
		}
		req.URL = s.baseURL + r.URL.RequestURI()
		id, err := s.bulk.Kickoff(r.Context(), s.bulkCaller(r), req, lenient(r))
		if err != nil {
			if errors.Is(err, bulk.ErrTooManyJobs) {
				w.Header().Set("Retry-After", bulkRetryBusy)
			}
			return bulkError(err)
		}
		w.Header().Set("Content-Location", s.baseURL+"/fhir"+bulk.StatusPath(id))
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

func (s *Server) bulkStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.bulk.Status(r.Context(), s.bulkCaller(r), r.URL.Query().Get("job"))
	if err != nil {
		return bulkError(err)
	}
	switch st.State {
	case bulk.StateDone:
		w.Header().Set("Expires", st.Expires.UTC().Format(http.TimeFormat))
		w.Header().Set("Cache-Control", "no-store")
		web.WriteBody(w, r, "application/json", http.StatusOK, st.Manifest)
		return nil
	case bulk.StateFailed:
		return httpError(http.StatusInternalServerError, "exception", st.Error)
	}
	w.Header().Set("X-Progress", st.Progress)
	w.Header().Set("Retry-After", bulkRetryRunning)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) bulkDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.bulk.Delete(r.Context(), s.bulkCaller(r), r.URL.Query().Get("job")); err != nil {
		return bulkError(err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) bulkFile(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 1 {
		return httpError(http.StatusNotFound, "not-found", "export file not found")
	}
	data, _, err := s.bulk.File(r.Context(), s.bulkCaller(r), r.URL.Query().Get("job"), n)
	if err != nil {
		return bulkError(err)
	}
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	return nil
}

// bulkError maps package bulk's errors to FHIR answers.
func bulkError(err error) error {
	var pe *bulk.ParamError
	var se bulk.ScopeError
	switch {
	case errors.As(err, &pe):
		return httpError(http.StatusBadRequest, pe.Code, pe.Msg)
	case errors.As(err, &se):
		return httpError(http.StatusForbidden, "forbidden", "_type names a resource type the access token's scopes do not allow")
	case errors.Is(err, bulk.ErrForbidden):
		return httpError(http.StatusForbidden, "forbidden", "$export is for SMART Backend Services clients registered with a purpose of use")
	case errors.Is(err, bulk.ErrNotFound):
		return httpError(http.StatusNotFound, "not-found", "export job, file or Group not found")
	case errors.Is(err, bulk.ErrTooManyJobs):
		return httpError(http.StatusTooManyRequests, "throttled", "this client has as many exports in progress as it may; retry later")
	case errors.Is(err, bulk.ErrUnavailable):
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the service is temporarily unavailable; retry later", Err: err}
	}
	return err
}
