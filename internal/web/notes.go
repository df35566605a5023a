package web

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// Notes is what the handlers of one request tell the attempt audit at the
// root of the middleware (httpapi's withRequest, ADR 0017) about it: who
// the caller turned out to be, why it was refused, whether a backend
// failed, and which route served it. It is safe for concurrent use. The
// zero value is ready; a request gets its Notes from [WithNotes].
type Notes struct {
	mu       sync.Mutex
	agent    audit.Agent
	authed   bool
	backend  bool
	policies []string
	route    string
}

// Noted is a copy of a request's notes.
type Noted struct {
	Agent    audit.Agent // the caller, once authenticated (zero otherwise)
	Authed   bool        // credentials were accepted (whatever a later gate decided)
	Backend  bool        // the credential check failed in the backend
	Policies []string    // the checks that refused the request, e.g. "csrf"
	Route    string      // the route pattern that served the request
}

// WithNotes returns ctx carrying a new, empty Notes, and the Notes.
func WithNotes(ctx context.Context) (context.Context, *Notes) {
	n := &Notes{}
	return context.WithValue(ctx, notesKey, n), n
}

func notesFrom(ctx context.Context) *Notes {
	n, _ := ctx.Value(notesKey).(*Notes)
	return n
}

// Snapshot returns a copy of the notes so far.
func (n *Notes) Snapshot() Noted {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Noted{Agent: n.agent, Authed: n.authed, Backend: n.backend,
		Policies: append([]string(nil), n.policies...), Route: n.route}
}

// NoteAgent tells the request's audit middleware who the caller is, for
// the generic event of a request no handler audits: called once a
// credential or session is accepted. It is a no-op outside a request.
func NoteAgent(ctx context.Context, a audit.Agent) {
	if n := notesFrom(ctx); n != nil {
		n.mu.Lock()
		n.agent, n.authed = a, true
		n.mu.Unlock()
	}
}

// NoteRefusal names, for the generic event, the check that refused the
// request (e.g. "csrf"). It is a no-op outside a request.
func NoteRefusal(ctx context.Context, policy string) {
	if n := notesFrom(ctx); n != nil {
		n.mu.Lock()
		n.policies = append(n.policies, policy)
		n.mu.Unlock()
	}
}

// NoteRoute records the route pattern that serves r (r.Pattern, set by
// the ServeMux that dispatched it), for the generic event's Query. The
// handler adapters call it; a route without a pattern leaves nothing.
func NoteRoute(r *http.Request) {
	if n := notesFrom(r.Context()); n != nil && r.Pattern != "" {
		n.mu.Lock()
		n.route = r.Pattern
		n.mu.Unlock()
	}
}

// Route returns the route pattern noted so far ([NoteRoute]), or "".
func (n *Notes) Route() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.route
}

// NoteBackendFailure tells the request's audit middleware that its
// credentials could not be checked because a backend failed (err wraps
// storage.ErrUnavailable or audit.ErrUnavailable, or a deadline
// passed): the request is not an authentication failure, and its event
// is not charged to the address's attempt budget. Its answer is 503, and
// the event is still recorded (or the answer stays 503 if it cannot be).
// Any other error is ignored: an error a caller can provoke must stay
// charged. It is a no-op outside a request.
func NoteBackendFailure(ctx context.Context, err error) {
	if !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, audit.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		return
	}
	if n := notesFrom(ctx); n != nil {
		n.mu.Lock()
		n.backend = true
		n.mu.Unlock()
	}
}
