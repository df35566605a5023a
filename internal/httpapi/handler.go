package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/record"
)

// handlerFunc is a handler that returns its error instead of writing it,
// so one wrapper maps every error to a safe OperationOutcome.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

// RequestID returns the request id assigned by the outermost middleware.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

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
// panics and writes the access log line. The log line carries the path
// only, never the query string (search values can be PHI) or any header
// value.
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx, tr := trail.Start(ctx)
		st := &reqState{trail: tr, audited: auditedPath(r.Method, r.URL.Path)}
		ctx = context.WithValue(ctx, stateKey{}, st)
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
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic", slog.String("request_id", id), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					writeOutcome(sw, r, &record.Error{Status: http.StatusInternalServerError,
						Issues: []record.Issue{{Code: "exception", Diagnostic: "internal error"}}})
				}
			}
			if sw.status == 0 {
				// Nothing written: net/http would send 200 with no body;
				// send it here so the attempt audit runs first.
				sw.WriteHeader(http.StatusOK)
			}
			s.log.InfoContext(ctx, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", s.now().Sub(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

// handle adapts a handlerFunc: errors become OperationOutcomes with a
// safe message; the internal cause goes to the log with the request id.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		NoteRoute(r)
		err := h(w, r)
		if err == nil {
			return
		}
		e := record.AsError(err)
		lvl := slog.LevelInfo
		if e.Status >= 500 {
			lvl = slog.LevelError
		}
		s.log.Log(r.Context(), lvl, "request failed",
			slog.String("request_id", RequestID(r.Context())),
			slog.Int("status", e.Status),
			slog.String("error", errString(e.Err)))
		if e.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeOutcome(w, r, e)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeOutcome(w http.ResponseWriter, r *http.Request, e *record.Error) {
	oo := record.OperationOutcome(e)
	if id := RequestID(r.Context()); id != "" {
		oo["id"] = id
	}
	writeJSON(w, r, e.Status, oo)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"internal error"}]}`)
	}
	writeBody(w, r, status, b)
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, b []byte) {
	w.Header().Set("Content-Type", responseType(r))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func httpError(status int, code, msg string) *record.Error {
	return &record.Error{Status: status, Issues: []record.Issue{{Code: code, Diagnostic: msg}}, Err: errors.New(msg)}
}

// securityHeaders sets headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
