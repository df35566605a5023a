package web

import (
	"log/slog"
	"net/http"
)

// HandlerFunc is a handler that returns its error instead of writing it
// (STYLE rule 26): an [Adapter] maps the error, logs its cause with the
// request id, and renders the public part. A handler that returns an
// error must not have written anything.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Renderer writes e as a response: status, headers and body. The
// adapter has already set e.Header and Retry-After.
type Renderer func(w http.ResponseWriter, r *http.Request, e *Error)

// Adapter turns HandlerFuncs into http.Handlers with one error path: a
// failure is mapped to an *Error by Map, logged (at Error level for 5xx
// but 501, Info otherwise) with the request id, status and cause, and
// written by Render. A nil Map, or a Map that returns nil, falls back to
// [Fallback]; Log and Render are required.
type Adapter struct {
	Log     *slog.Logger
	Message string // the log line's message; "request failed" if empty
	Map     func(r *http.Request, err error) *Error
	Render  Renderer
	// NoteRoutes notes each request's route pattern for the attempt
	// audit ([NoteRoute]) before the handler runs.
	NoteRoutes bool
}

// Handle adapts h.
func (a *Adapter) Handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.NoteRoutes {
			NoteRoute(r)
		}
		if err := h(w, r); err != nil {
			a.Fail(w, r, err)
		}
	})
}

// Fail maps, logs and writes err, for a handler that is not a
// HandlerFunc (a middleware's refusal).
func (a *Adapter) Fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if a.Map != nil {
		e = a.Map(r, err)
	}
	if e == nil {
		e = Fallback(err)
	}
	lvl := slog.LevelInfo
	if e.Status >= 500 && e.Status != http.StatusNotImplemented {
		lvl = slog.LevelError
	}
	msg := a.Message
	if msg == "" {
		msg = "request failed"
	}
	a.Log.Log(r.Context(), lvl, msg, slog.String("request_id", RequestID(r.Context())),
		slog.Int("status", e.Status), slog.String("error", e.cause()))
	e.writeHeaders(w)
	a.Render(w, r, e)
}

// Fallback is the *Error in err's chain, or [Internal].
func Fallback(err error) *Error {
	if e := AsError(err); e != nil {
		return e
	}
	return Internal(err)
}
