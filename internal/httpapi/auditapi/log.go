package auditapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
)

// The transparency log of audit events (ADR 0010), under /log:
//
//	GET /log/checkpoint                          public: C2SP signed checkpoint
//	GET /log/tile/<L>/<N>[.p/<W>]                public: C2SP hash tiles
//	GET /log/tile/entries/<N>[.p/<W>]            auditors: C2SP entry bundles
//	GET /log/proof/inclusion?index=I[&size=S]    public: C2SP tlog-proof
//	GET /log/proof/consistency?old=A&new=B       public: one hash per line
//
// Public endpoints reveal hashes of salted leaves only. Entry bundles
// hold the audit events: they need an authenticated principal with the
// auditor or privacy-officer role (401 without credentials, 403 with
// another role) and every read or refusal is audited, fail closed.

// TransparencyLog is what the /log routes read; *merkle.Reader
// implements it.
type TransparencyLog interface {
	Checkpoint(ctx context.Context) (storage.Checkpoint, error)
	Tile(ctx context.Context, t tlog.Tile) ([]byte, error)
	EntryBundle(ctx context.Context, t tlog.Tile) ([]byte, error)
	InclusionProof(ctx context.Context, r merkle.InclusionRequest) ([]byte, error)
	ConsistencyProof(ctx context.Context, r merkle.ConsistencyRequest) ([]byte, error)
	// LeafProof proves one event's inclusion (GET /fhir/AuditEvent/{id}/$proof).
	LeafProof(ctx context.Context, idx, size int64) (merkle.EventProof, error)
}

// Recorder makes one audit event durable before the response.
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Cache lifetimes of /log responses. Full tiles and bundles never
// change (C2SP tlog-tiles: "immutable"); a partial tile or the
// checkpoint changes as the log grows.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheCheckpoint = "no-cache"
	cachePartial    = "public, max-age=5"
)

// logAuditRoles may read entry bundles.
var logAuditRoles = []string{string(identity.RoleAuditor), string(identity.RolePrivacyOfficer)}

// LogRoutes mounts the /log routes on mux, each adapted by handle (the
// mounting API's error answers); none without a transparency log.
func (h *Handler) LogRoutes(mux *http.ServeMux, handle func(web.HandlerFunc) http.Handler) {
	if h.tlog == nil {
		return
	}
	mux.Handle("GET /log/checkpoint", handle(h.logCheckpoint))
	mux.Handle("GET /log/tile/", handle(h.logTile))
	mux.Handle("GET /log/proof/inclusion", handle(h.logInclusion))
	mux.Handle("GET /log/proof/consistency", handle(h.logConsistency))
}

func (h *Handler) logCheckpoint(w http.ResponseWriter, r *http.Request) error {
	c, err := h.tlog.Checkpoint(r.Context())
	if err != nil {
		return logError(err)
	}
	writeText(w, cacheCheckpoint, c.Note)
	return nil
}

func (h *Handler) logTile(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, "/log/tile/")
	t, err := merkle.ParseTilePath(rest)
	if err != nil {
		return logError(err)
	}
	cache := cacheImmutable
	if t.W < merkle.TileWidth {
		cache = cachePartial
	}
	if t.L == -1 {
		return h.logEntries(w, r, t, cache)
	}
	data, err := h.tlog.Tile(r.Context(), t)
	if err != nil {
		return logError(err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", cache)
	_, _ = w.Write(data)
	return nil
}

// logEntries serves an entry bundle to auditors; the read (or refusal)
// is audited before any byte is sent.
func (h *Handler) logEntries(w http.ResponseWriter, r *http.Request, t tlog.Tile, cache string) error {
	p, ok := h.authenticate(w, r)
	if !ok {
		return nil
	}
	ev := audit.Event{Time: h.now().UTC(), Action: audit.ActionLogRead, Outcome: audit.OutcomeSuccess,
		Agent: logAgent(p, r), Entities: []string{"log/tile/" + merkle.TilePath(t)}, RequestID: web.RequestID(r.Context()), Status: http.StatusOK}
	if !slices.ContainsFunc(p.Roles, func(role string) bool { return slices.Contains(logAuditRoles, role) }) || p.Scopes != nil {
		ev.Outcome, ev.Status, ev.Policies = audit.OutcomeDenied, http.StatusForbidden, []string{"log-entries-auditors-only"}
		if err := h.recordLogAccess(r.Context(), ev); err != nil {
			return err
		}
		return outcome(http.StatusForbidden, "forbidden", "entry bundles are for the auditor and privacy-officer roles")
	}
	data, err := h.tlog.EntryBundle(r.Context(), t)
	if err != nil {
		return logError(err)
	}
	if err := h.recordLogAccess(r.Context(), ev); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// Bundles are for one principal: never in a shared cache.
	w.Header().Set("Cache-Control", strings.Replace(cache, "public", "private", 1))
	_, _ = w.Write(data)
	return nil
}

func (h *Handler) recordLogAccess(ctx context.Context, ev audit.Event) error {
	if h.rec == nil {
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the audit log is unavailable", Err: errors.New("no audit recorder for /log")}
	}
	if err := h.rec.Record(ctx, ev); err != nil {
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the audit log is unavailable; retry later", Err: err}
	}
	return nil
}

func logAgent(p authn.Principal, r *http.Request) audit.Agent {
	a := audit.Agent{User: p.ID, Client: string(p.Kind), Session: p.SessionID, Address: web.ClientIP(r)}
	if len(p.Roles) > 0 {
		a.Role = strings.Join(p.Roles, ",")
	}
	return a
}

func (h *Handler) logInclusion(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req, err := merkle.ParseInclusionRequest(q.Get("index"), q.Get("size"))
	if err != nil {
		return logError(err)
	}
	b, err := h.tlog.InclusionProof(r.Context(), req)
	if err != nil {
		return logError(err)
	}
	cache := cacheImmutable
	if req.Size == 0 {
		cache = cacheCheckpoint // the latest checkpoint moves
	}
	writeText(w, cache, b)
	return nil
}

func (h *Handler) logConsistency(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req, err := merkle.ParseConsistencyRequest(q.Get("old"), q.Get("new"))
	if err != nil {
		return logError(err)
	}
	b, err := h.tlog.ConsistencyProof(r.Context(), req)
	if err != nil {
		return logError(err)
	}
	writeText(w, cacheImmutable, b)
	return nil
}

func writeText(w http.ResponseWriter, cache string, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// logError maps merkle errors to statuses; the message of a 400 or 404
// names the bad parameter or the missing object (public values only).
func logError(err error) error {
	switch {
	case errors.Is(err, merkle.ErrBadRequest):
		return &web.Error{Status: http.StatusBadRequest, Code: "invalid", Msg: publicMessage(err), Err: err}
	case errors.Is(err, merkle.ErrNotFound):
		return &web.Error{Status: http.StatusNotFound, Code: "not-found", Msg: publicMessage(err), Err: err}
	}
	return &web.Error{Status: http.StatusInternalServerError, Code: "exception", Msg: "internal error", Err: err}
}

// publicMessage strips the "merkle: ..." sentinel prefix; the rest is
// built from the request's own numbers.
func publicMessage(err error) string {
	msg := err.Error()
	for _, s := range []error{merkle.ErrBadRequest, merkle.ErrNotFound} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return msg
}
