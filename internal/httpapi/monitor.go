package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/web"
)

// Monitoring (ADR 0046) under /admin/api/monitor:
//
//	POST /admin/api/monitor/ingest?source=NAME   multipart/form-data: one part
//	     "context" (the FHIR Bundle), then one or more parts "events"
//	     (AuditEvent NDJSON), streamed into the ingest as they arrive.
//	GET  /admin/api/monitor/alerts?since=&status=&min_score=&limit=&suppressed=
//
// Authorization is the alerts service's (privacy-officer; a security
// administrator reads attack alerts): this layer authenticates, hands
// over the principal's roles (none for a session without a second
// factor) and maps the service's errors. Refusals are audited by the
// service.

// Monitor is the monitoring service behind /admin/api/monitor
// (alerts.Service).
type Monitor interface {
	Ingest(ctx context.Context, by alerts.Actor, source string, contextFile io.Reader, events alerts.Files, progress func(alerts.Progress)) (alerts.Ingested, error)
	List(ctx context.Context, by alerts.Actor, f alerts.Filter) ([]alerts.Alert, error)
}

// MaxIngestBody bounds one ingest request (STYLE rule 24): 4 GiB is a
// few days of a 500-bed hospital's access log with its context; a
// larger log is sent in several ingests of the same source (alerts
// with the same key merge). The ingest also runs within the server's
// handler timeout (timeouts.handler): a log that takes longer is
// ingested offline (phivault monitor ingest --data).
const MaxIngestBody = 4 << 30

func (a *adminAPI) monitorRoutes(admin *http.ServeMux) {
	admin.Handle("POST /admin/api/monitor/ingest", a.monitorHandle(MaxIngestBody, a.monitorIngest))
	admin.Handle("GET /admin/api/monitor/alerts", a.monitorHandle(maxAdminBody, a.monitorAlerts))
}

// monitorHandle is handle with the body bound limit and the monitor
// service required.
func (a *adminAPI) monitorHandle(limit int64, h handlerFunc) http.Handler {
	ad := &web.Adapter{Log: a.s.log, Message: "request failed", Render: web.JSON("application/json", true),
		Map: func(_ *http.Request, err error) *web.Error { return adminError(monitorError(err)) }}
	inner := ad.Handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.s.monitor == nil {
			ad.Fail(w, r, web.New(http.StatusServiceUnavailable, "monitoring is not available", errors.New("no Monitor configured")))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		inner.ServeHTTP(w, r)
	})
}

// monitorError maps the alerts service's sentinels; their texts are
// written for the client and hold no PHI.
func monitorError(err error) error {
	switch {
	case errors.Is(err, alerts.ErrForbidden):
		return web.New(http.StatusForbidden, "monitoring requires the privacy-officer role (attack alerts: security-admin)", err)
	case errors.Is(err, alerts.ErrNotFound):
		return web.New(http.StatusNotFound, "no such alert", err)
	case errors.Is(err, alerts.ErrInvalid):
		// The service's message names what is wrong (a line number, a
		// field), never a value of the input.
		return web.New(http.StatusBadRequest, err.Error(), err)
	}
	return err
}

// monitorActor authenticates r and returns the service's actor.
func (a *adminAPI) monitorActor(r *http.Request) (alerts.Actor, error) {
	p, err := a.principal(r)
	if err != nil {
		return alerts.Actor{}, err
	}
	by := alerts.Actor{Agent: agent(p, r), Roles: p.Roles, RequestID: web.RequestID(r.Context()), Status: http.StatusOK}
	if p.Kind == authn.KindSession && !p.MFA {
		by.Roles = nil // monitoring, like administration, needs a second factor
	}
	return by, nil
}

func (a *adminAPI) monitorIngest(w http.ResponseWriter, r *http.Request) error {
	by, err := a.monitorActor(r)
	if err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return web.New(http.StatusUnsupportedMediaType, `send multipart/form-data with a part "context" and one or more parts "events"`, err)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	first, err := mr.NextPart()
	if err != nil || first.FormName() != "context" {
		return web.New(http.StatusBadRequest, `the first part must be "context" (the FHIR Bundle)`, err)
	}
	files := &partFiles{mr: mr}
	res, err := a.s.monitor.Ingest(r.Context(), by, r.URL.Query().Get("source"), first, files, nil)
	if err != nil {
		if files.err != nil {
			return files.err
		}
		return err
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"run": res.Run, "events": res.Events, "bytes": res.Bytes,
		"alerts": res.Alerts, "suppressed": res.Suppressed, "unreadable": res.Unreadable, "context_unreadable": res.ContextUnreadable})
	return nil
}

// partFiles yields the "events" parts of a multipart body in order.
type partFiles struct {
	mr  *multipart.Reader
	err error // a malformed body, answered as such
}

func (p *partFiles) Next() (io.Reader, error) {
	part, err := p.mr.NextPart()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		p.err = err
		return nil, err
	}
	if err != nil {
		p.err = web.New(http.StatusBadRequest, "the multipart body is malformed", err)
		return nil, p.err
	}
	if part.FormName() != "events" {
		p.err = web.New(http.StatusBadRequest, `after "context", every part must be "events"`, nil)
		return nil, p.err
	}
	return part, nil
}

func (a *adminAPI) monitorAlerts(w http.ResponseWriter, r *http.Request) error {
	by, err := a.monitorActor(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f alerts.Filter
	if f.Since, err = alerts.ParseSince(q.Get("since"), a.s.now()); err != nil {
		return err
	}
	f.Status, f.Source = q.Get("status"), q.Get("source")
	if v := q.Get("min_score"); v != "" {
		if f.MinScore, err = strconv.ParseFloat(v, 64); err != nil || f.MinScore < 0 || f.MinScore > 1 {
			return web.New(http.StatusBadRequest, "min_score is a number from 0 to 1", err)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return web.New(http.StatusBadRequest, "limit is a positive integer", err)
		}
	}
	f.Suppressed = q.Get("suppressed") == "true"
	as, err := a.s.monitor.List(r.Context(), by, f)
	if err != nil {
		return err
	}
	out := make([]alerts.JSON, 0, len(as))
	for _, x := range as {
		out = append(out, x.JSON())
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"alerts": out, "generated": a.s.now().UTC().Format(time.RFC3339)})
	return nil
}
