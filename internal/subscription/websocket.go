package subscription

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// The R4 websocket channel (R4 §2.46.7.2): the client connects to the
// URL the CapabilityStatement advertises, sends "bind {id}" for a
// subscription of its own, gets "bound {id}", and then "ping {id}" on
// each notification; it then fetches what changed with its own
// credentials. Only the owner may bind: the connection authenticates
// (bearer, as every /fhir request) and the principal must be the
// subscription's owner; any other bind, of a subscription that does not
// exist included, closes the connection with the same status and text.

// Websocket limits.
const (
	maxWSMessage      = 256 // "bind " and a FHIR id
	maxBindsPerConn   = 32
	maxConnsPerSub    = 8
	wsWriteTimeout    = 5 * time.Second
	wsKeepalive       = 30 * time.Second
	wsStatusForbidden = websocket.StatusPolicyViolation
)

// Hub holds the websocket connections bound to subscriptions in this
// process. It is safe for concurrent use.
type Hub struct {
	s     *Service
	mu    sync.Mutex
	conns map[string]map[*wsConn]bool // subscription id -> connections
	all   map[*wsConn]bool
}

type wsConn struct {
	c      *websocket.Conn
	cancel context.CancelFunc
	out    chan string
}

func newHub(s *Service) *Hub {
	return &Hub{s: s, conns: map[string]map[*wsConn]bool{}, all: map[*wsConn]bool{}}
}

// bound reports whether a client is bound to sub here (Store.Claim).
func (h *Hub) bound(sub string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns[sub]) > 0
}

// ping queues "ping {sub}" to every client bound to sub and returns how
// many there were.
func (h *Hub) ping(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.conns[sub] {
		select {
		case c.out <- "ping " + sub:
			n++
		default: // a client that does not read: it misses this ping
		}
	}
	return n
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.all {
		c.cancel()
	}
}

// Principal returns the authenticated principal of a request (the HTTP
// layer's authentication).
type Principal func(r *http.Request) (authn.Principal, bool)

// Handler serves the websocket endpoint for requests authenticated by
// principal (the /fhir middleware ran before it).
func (h *Hub) Handler(principal Principal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(r)
		if !ok {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		// The server's read and write timeouts apply to requests, not to
		// a connection that lives as long as the client wants.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		c, err := websocket.Accept(w, r, nil) // same-origin only (default)
		if err != nil {
			return
		}
		c.SetReadLimit(maxWSMessage)
		// The request's context ends with the handler's timeout; the
		// connection lives until the client leaves or the service stops.
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		wc := &wsConn{c: c, cancel: cancel, out: make(chan string, 16)}
		h.mu.Lock()
		h.all[wc] = true
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.all, wc)
			for sub, cs := range h.conns {
				delete(cs, wc)
				if len(cs) == 0 {
					delete(h.conns, sub)
				}
			}
			h.mu.Unlock()
			cancel()
			_ = c.CloseNow()
		}()
		go h.writer(ctx, wc)
		h.reader(ctx, wc, p)
	})
}

// writer sends queued messages and keeps the connection alive.
func (h *Hub) writer(ctx context.Context, wc *wsConn) {
	t := time.NewTicker(wsKeepalive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-wc.out:
			wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := wc.c.Write(wctx, websocket.MessageText, []byte(msg))
			cancel()
			if err != nil {
				wc.cancel()
				return
			}
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := wc.c.Ping(pctx)
			cancel()
			if err != nil {
				wc.cancel()
				return
			}
		}
	}
}

// reader handles the client's binds until it leaves.
func (h *Hub) reader(ctx context.Context, wc *wsConn, p authn.Principal) {
	binds := 0
	for {
		typ, msg, err := wc.c.Read(ctx)
		if err != nil {
			return
		}
		cmd, id, ok := strings.Cut(strings.TrimSpace(string(msg)), " ")
		if typ != websocket.MessageText || !ok || cmd != "bind" || !record.ValidID(id) {
			_ = wc.c.Close(websocket.StatusUnsupportedData, "expected: bind {subscription id}")
			return
		}
		binds++
		if binds > maxBindsPerConn {
			_ = wc.c.Close(wsStatusForbidden, "too many binds on one connection")
			return
		}
		if err := h.bind(ctx, wc, p, id); err != nil {
			if errors.Is(err, errNotOwner) {
				_ = wc.c.Close(wsStatusForbidden, "not permitted to bind this subscription")
			} else {
				h.s.o.Logger.WarnContext(ctx, "websocket bind failed", slog.String("error", err.Error()))
				_ = wc.c.Close(websocket.StatusTryAgainLater, "the service is temporarily unavailable")
			}
			return
		}
		select {
		case wc.out <- "bound " + id:
		default:
		}
	}
}

var errNotOwner = errors.New("subscription: not the owner")

// bind binds wc to subscription id if p owns it and its channel is the
// websocket; errNotOwner otherwise (also for an unknown id).
func (h *Hub) bind(ctx context.Context, wc *wsConn, p authn.Principal, id string) error {
	row, err := h.s.o.Store.Subscription(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotOwner
	}
	if err != nil {
		return err
	}
	if row.Channel != ChannelWebsocket || !(Owner{Kind: row.OwnerKind, ID: row.OwnerID}).owns(p) {
		return errNotOwner
	}
	// The owner as the account stands now (disabled, revoked: refused).
	if _, err := h.s.res.principal(ctx, Owner{Kind: row.OwnerKind, ID: row.OwnerID}); err != nil {
		if errors.Is(err, ErrOwnerGone) {
			return errNotOwner
		}
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.conns[id]
	if cs == nil {
		cs = map[*wsConn]bool{}
		h.conns[id] = cs
	}
	if len(cs) >= maxConnsPerSub {
		return errNotOwner
	}
	cs[wc] = true
	return nil
}
