package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

// handlerFunc is a handler that returns its error instead of writing it;
// an adapter (web.Adapter) maps every error to a safe answer.
type handlerFunc = web.HandlerFunc

type ctxKey int

const (
	principalKey ctxKey = iota
)

// statusWriter records the status for the access log and, for audited
// requests, runs before (the attempt audit, attempts.go) once, just
// before the status line is written; a replacement it returns is
// written instead and the handler's own header and body are discarded.
type statusWriter struct {
	http.ResponseWriter
	req     *http.Request
	status  int
	bytes   int64
	before  func(status int) *replacement
	discard bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.discard {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: the final status follows
		return
	}
	if w.status == 0 {
		if w.before != nil {
			before := w.before
			w.before = nil
			if rp := before(code); rp != nil {
				w.discard = true
				w.status = rp.err.Status
				inner := &statusWriter{ResponseWriter: w.ResponseWriter}
				writeReplacement(inner, w.req, rp)
				w.bytes += inner.bytes
				return
			}
		}
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// FlushError sends the status first (through before), so a flush cannot
// put a status on the wire that skipped the attempt audit.
func (w *statusWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequest assigns the request id, starts the request's audit trail
// (attempts.go), bounds the handler's time and the body's pace, recovers
// panics, tells the observer (observe.go) and writes the access log
// line. The log line carries the path only, never the query string
// (search values can be PHI) or any header value; the observer gets the
// route pattern, never the path.
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		id := web.NewRequestID()
		w.Header().Set("X-Request-Id", id)
		ctx := web.WithRequestID(r.Context(), id)
		ctx, tr := trail.Start(ctx)
		ctx, notes := web.WithNotes(ctx)
		st := &reqState{trail: tr, audited: auditedPath(r.Method, r.URL.Path), notes: notes}
		ctx = context.WithValue(ctx, stateKey{}, st)
		if s.obs != nil {
			ctx = s.obs.BeginRequest(ctx)
		}
		if s.handlerTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.handlerTimeout)
			defer cancel()
		}
		r = r.WithContext(ctx)
		if s.minBodyRate > 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = newMinRateBody(r.Body, http.NewResponseController(w), s.now, s.bodyGrace, s.minBodyRate)
		}
		sw := &statusWriter{ResponseWriter: w, req: r}
		sw.before = func(status int) *replacement { return s.beforeStatus(r, st, status) }
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					if s.obs != nil {
						s.obs.EndRequest(ctx, routeOf(st), r.Method, sw.status, s.now().Sub(start))
					}
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic", slog.String("request_id", id), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					writeOutcome(sw, r, &web.Error{Status: http.StatusInternalServerError, Code: "exception", Msg: "internal error"})
				}
			}
			if sw.status == 0 {
				// Nothing written: net/http would send 200 with no body;
				// send it here so the attempt audit runs first.
				sw.WriteHeader(http.StatusOK)
			}
			elapsed := s.now().Sub(start)
			if s.obs != nil {
				s.obs.EndRequest(ctx, routeOf(st), r.Method, sw.status, elapsed)
			}
			s.log.InfoContext(ctx, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", elapsed))
		}()
		next.ServeHTTP(sw, r)
	})
}

// handle adapts a handlerFunc: errors become OperationOutcomes with a
// safe message (fhirError); the internal cause goes to the log with the
// request id.
func (s *Server) handle(h handlerFunc) http.Handler {
	a := web.Adapter{Log: s.log, Message: "request failed", Map: fhirError, Render: writeOutcome, NoteRoutes: true}
	return a.Handle(h)
}

// fhirError is the one mapping of the FHIR API's errors to answers: a
// *web.Error as it is; a record error with the FHIR RESTful status of
// its kind (record.StatusCode) and its issues; anything else 500
// "internal error". A 503 carries Retry-After: 1.
func fhirError(_ *http.Request, err error) *web.Error {
	var e web.Error
	var re *record.Error
	switch we := web.AsError(err); {
	case we != nil:
		e = *we
	case errors.As(err, &re):
		e = web.Error{Status: record.StatusCode(re), Issues: re.Issues, Err: re.Err}
	default:
		e = *web.Internal(err)
	}
	e.RetryAfter = 0
	if e.Status == http.StatusServiceUnavailable {
		e.RetryAfter = time.Second
	}
	return &e
}

// writeOutcome writes e as an OperationOutcome (web.Outcome) in the
// negotiated JSON media type.
func writeOutcome(w http.ResponseWriter, r *http.Request, e *web.Error) {
	web.WriteJSON(w, r, responseType(r), e.Status, web.OperationOutcome(r, e))
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	web.WriteJSON(w, r, responseType(r), status, v)
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, b []byte) {
	web.WriteBody(w, r, responseType(r), status, b)
}

// httpError is an error of the FHIR API with one issue: its FHIR issue
// type and its public diagnostic (which is also the cause in the log).
func httpError(status int, code, msg string) *web.Error {
	return &web.Error{Status: status, Code: code, Msg: msg, Err: errors.New(msg)}
}
