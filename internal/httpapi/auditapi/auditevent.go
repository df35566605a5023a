package auditapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// AuditLog is the searchable audit log behind GET /fhir/AuditEvent
// (package index); nil serves 404 there.
type AuditLog interface {
	Search(ctx context.Context, c index.Caller, f index.Filter) ([]index.Entry, error)
	Get(ctx context.Context, c index.Caller, leaf int64) (index.Entry, error)
	Denied(ctx context.Context, c index.Caller, action audit.Action, query string) error
}

// auditReaders may read every event; a patient reads the events that
// touched their own record; nobody else reads the log.
var auditReaders = []string{string(identity.RoleAuditor), string(identity.RolePrivacyOfficer)}

// auditEventParams are the AuditEvent search parameters served.
var auditEventParams = map[string]bool{
	"patient": true, "agent": true, "entity": true, "subtype": true, "action": true, "outcome": true,
	"date": true, "_count": true, "_before": true, "_format": true,
}

// Or routes requests on the AuditEvent type to auditH and all
// others to h. The log is append-only: AuditEvent has no create,
// update, delete or history, whatever the caller's rights.
func Or(h, auditH web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("type") == "AuditEvent" {
			return auditH(w, r)
		}
		return h(w, r)
	}
}

// Refuse answers the interactions AuditEvent does not have (405).
func Refuse(http.ResponseWriter, *http.Request) error {
	return outcome(http.StatusMethodNotAllowed, "not-supported", "the audit log is append-only: AuditEvent can only be read and searched")
}

// auditScope says what the caller may read: everything (""), the
// record of one patient ("Patient/<id>"), or nothing (an error).
func (h *Handler) auditScope(r *http.Request) (patient string, err error) {
	p := h.principal(r)
	if slices.ContainsFunc(p.Roles, func(role string) bool { return slices.Contains(auditReaders, role) }) {
		return "", nil
	}
	if slices.Contains(p.Roles, string(identity.RolePatient)) && p.Kind == authn.KindSession && h.fhirUser != nil {
		fhirUser, err := h.fhirUser(r.Context(), p.ID)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(fhirUser, ident.PatientPrefix) {
			return fhirUser, nil
		}
	}
	return "", errAuditForbidden
}

var errAuditForbidden = outcome(http.StatusForbidden, "forbidden", "only auditors, privacy officers and the patient concerned may read the audit log")

func (h *Handler) auditCaller(r *http.Request) index.Caller {
	return index.Caller{Agent: h.agent(r), Purpose: "HOPERAT", RequestID: web.RequestID(r.Context())}
}

// deny records a refused read of the log, then answers 403.
func (h *Handler) auditDeny(r *http.Request, action audit.Action, query string) error {
	if err := h.events.Denied(r.Context(), h.auditCaller(r), action, query); err != nil {
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the audit log is unavailable", Err: err}
	}
	return errAuditForbidden
}

// Search answers GET /fhir/AuditEvent (mounted through Or): a searchset
// Bundle of the events the caller may read, newest first, paged with
// _before; a patient's search is confined to their own record.
func (h *Handler) Search(w http.ResponseWriter, r *http.Request) error {
	if h.events == nil {
		return outcome(http.StatusNotFound, "not-supported", "the audit log is not searchable on this server")
	}
	scope, err := h.auditScope(r)
	if errors.Is(err, errAuditForbidden) {
		return h.auditDeny(r, audit.ActionSearch, "AuditEvent")
	}
	if err != nil {
		return err
	}
	f, err := parseAuditFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if scope != "" {
		if f.Patient != "" && f.Patient != scope {
			return h.auditDeny(r, audit.ActionSearch, "AuditEvent?patient")
		}
		f.Patient = scope
	}
	entries, err := h.events.Search(r.Context(), h.auditCaller(r), f)
	if err != nil {
		return auditErr(err)
	}
	base := h.baseURL + "/fhir"
	bundle := map[string]any{
		"resourceType": "Bundle", "type": "searchset",
		"link": []any{map[string]any{"relation": "self", "url": base + "/AuditEvent?" + r.URL.RawQuery}},
	}
	var out []any
	for _, e := range entries {
		id := strconv.FormatInt(e.Index, 10)
		ev := e.Event
		if scope != "" {
			// A patient sees their own view of each event: no other
			// patient, none of their resources, no staff address.
			v, ok := ev.PatientView(scope)
			if !ok || f.Entity != "" && !viewHasEntity(v, f.Entity) {
				// The entity matched another patient's part of the
				// event: not an answer to this patient's search.
				continue
			}
			ev = v
		}
		out = append(out, map[string]any{
			"fullUrl":  base + "/AuditEvent/" + id,
			"resource": ev.AuditEvent(id),
			"search":   map[string]any{"mode": "match"},
		})
	}
	if out != nil {
		bundle["entry"] = out
	}
	if limit := effectiveLimit(f.Limit); len(entries) == limit && entries[len(entries)-1].Index > 0 {
		q := r.URL.Query()
		q.Set("_before", strconv.FormatInt(entries[len(entries)-1].Index, 10))
		bundle["link"] = append(bundle["link"].([]any), map[string]any{"relation": "next", "url": base + "/AuditEvent?" + q.Encode()})
	}
	h.writeJSON(w, r, http.StatusOK, bundle)
	return nil
}

// viewHasEntity reports whether a patient's view of an event holds the
// resource ref ("Type/id", any version).
func viewHasEntity(v audit.Event, ref string) bool {
	return slices.ContainsFunc(v.Entities, func(e string) bool { return e == ref || strings.HasPrefix(e, ref+"/_history/") })
}

func effectiveLimit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, index.MaxLimit)
}

// Read answers GET /fhir/AuditEvent/{id} (mounted through Or): the
// event at that leaf index, or a patient's own view of it.
func (h *Handler) Read(w http.ResponseWriter, r *http.Request) error {
	if h.events == nil {
		return outcome(http.StatusNotFound, "not-supported", "the audit log is not readable on this server")
	}
	leaf, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || leaf < 0 {
		return outcome(http.StatusNotFound, "not-found", "no such AuditEvent")
	}
	scope, err := h.auditScope(r)
	if errors.Is(err, errAuditForbidden) {
		return h.auditDeny(r, audit.ActionRead, "AuditEvent/"+strconv.FormatInt(leaf, 10))
	}
	if err != nil {
		return err
	}
	e, err := h.events.Get(r.Context(), h.auditCaller(r), leaf)
	if err != nil {
		return auditErr(err)
	}
	// A patient may read an event only if it touched their record (any
	// other event answers as if it did not exist), and then only their
	// own view of it.
	ev := e.Event
	if scope != "" {
		v, ok := ev.PatientView(scope)
		if !ok {
			return outcome(http.StatusNotFound, "not-found", "no such AuditEvent")
		}
		ev = v
	}
	h.writeJSON(w, r, http.StatusOK, ev.AuditEvent(strconv.FormatInt(leaf, 10)))
	return nil
}

// Proof answers GET /fhir/AuditEvent/{id}/$proof: what is needed
// to check, with standard tools, that this event is in the signed log,
// with a C2SP tlog-proof against the latest signed checkpoint
// (embedded) and the log's verifier key. Access is that of the event
// itself.
//
// An auditor or privacy officer gets the event's canonical bytes and,
// in the proof's extra line, its leaf salt: they recompute the leaf.
// A patient gets their view of the event (audit.Event.PatientView) and
// the leaf hash, never the leaf or its salt: the leaf names other
// patients and staff addresses, and the salt would let a patient confirm
// guesses of them against the hash. The patient checks that the leaf
// is in the signed log; that the view is a faithful part of that leaf is
// derived by the server from the very bytes it hashed, and anyone with
// the event's full proof (an auditor) can check it afterwards: the leaf
// at that position can never change (docs/audit-log.md, ADR 0018).
func (h *Handler) Proof(w http.ResponseWriter, r *http.Request) error {
	if h.events == nil || h.tlog == nil {
		return outcome(http.StatusNotFound, "not-supported", "the audit log has no proofs on this server")
	}
	leaf, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || leaf < 0 {
		return outcome(http.StatusNotFound, "not-found", "no such AuditEvent")
	}
	scope, err := h.auditScope(r)
	if errors.Is(err, errAuditForbidden) {
		return h.auditDeny(r, audit.ActionRead, "AuditEvent/"+strconv.FormatInt(leaf, 10)+"/$proof")
	}
	if err != nil {
		return err
	}
	e, err := h.events.Get(r.Context(), h.auditCaller(r), leaf)
	if err != nil {
		return auditErr(err)
	}
	view, ok := e.Event.PatientView(scope)
	if scope != "" && !ok {
		return outcome(http.StatusNotFound, "not-found", "no such AuditEvent")
	}
	p, err := h.tlog.LeafProof(r.Context(), leaf, 0)
	if errors.Is(err, merkle.ErrNotFound) {
		return outcome(http.StatusNotFound, "not-found", "the event is not in a signed checkpoint yet; retry in a second")
	}
	if err != nil {
		return err
	}
	if scope != "" {
		b, err := view.Marshal()
		if err != nil {
			return err
		}
		h.writeJSON(w, r, http.StatusOK, map[string]any{
			"resourceType": "Parameters",
			"parameter": []any{
				map[string]any{"name": "index", "valueString": strconv.FormatInt(p.Index, 10)},
				map[string]any{"name": "view", "valueBase64Binary": base64.StdEncoding.EncodeToString(b)},
				map[string]any{"name": "leafHash", "valueBase64Binary": base64.StdEncoding.EncodeToString(p.LeafHash[:])},
				map[string]any{"name": "proof", "valueString": string(p.HashProof)},
				map[string]any{"name": "verifierKey", "valueString": h.verifier},
			},
		})
		return nil
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{
		"resourceType": "Parameters",
		"parameter": []any{
			map[string]any{"name": "index", "valueString": strconv.FormatInt(p.Index, 10)},
			map[string]any{"name": "event", "valueBase64Binary": base64.StdEncoding.EncodeToString(p.Event)},
			map[string]any{"name": "proof", "valueString": string(p.Proof)},
			map[string]any{"name": "verifierKey", "valueString": h.verifier},
		},
	})
	return nil
}

func auditErr(err error) error {
	switch {
	case errors.Is(err, index.ErrNotFound):
		return outcome(http.StatusNotFound, "not-found", "no such AuditEvent")
	case errors.Is(err, audit.ErrUnavailable):
		return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the audit log is unavailable", Err: err}
	}
	return err
}

// parseAuditFilter reads the AuditEvent search parameters. Unknown
// parameters are refused (400), as are malformed values.
func parseAuditFilter(q url.Values) (index.Filter, error) {
	var f index.Filter
	bad := func(param, why string) error {
		return outcome(http.StatusBadRequest, "invalid", "AuditEvent search parameter "+param+": "+why)
	}
	for name := range q {
		if !auditEventParams[name] {
			return f, outcome(http.StatusBadRequest, "not-supported", "unknown AuditEvent search parameter (supported: patient, agent, entity, subtype, action, outcome, date, _count)")
		}
		if name != "date" && len(q[name]) > 1 {
			return f, bad(name, "give it once")
		}
	}
	if v := q.Get("patient"); v != "" {
		if !strings.HasPrefix(v, ident.PatientPrefix) {
			v = ident.PatientRef(v).String()
		}
		if !ident.ValidID(strings.TrimPrefix(v, ident.PatientPrefix)) {
			return f, bad("patient", "not a Patient reference")
		}
		f.Patient = v
	}
	if v := q.Get("entity"); v != "" {
		typ, id, ok := strings.Cut(v, "/")
		if !ok || typ == "" || !ident.ValidID(id) {
			return f, bad("entity", "must be a reference Type/id")
		}
		f.Entity = v
	}
	if v := q.Get("agent"); v != "" {
		if len(v) > 256 {
			return f, bad("agent", "too long")
		}
		f.Agent = v
	}
	if v := q.Get("subtype"); v != "" {
		if len(v) > 64 {
			return f, bad("subtype", "too long")
		}
		f.Action = audit.Action(v)
		if v == "history-instance" { // the FHIR code of phivault's "history"
			f.Action = audit.ActionHistory
		}
	}
	// Tokens are code or system|code (R4 search.html#token), the
	// system being the code system of the element's required binding.
	withSystem := func(param, system string) (string, error) {
		v := q.Get(param)
		sys, code, ok := strings.Cut(v, "|")
		if !ok {
			return v, nil
		}
		if sys != system {
			return "", bad(param, "the code system must be "+system)
		}
		return code, nil
	}
	action, err := withSystem("action", "http://hl7.org/fhir/audit-event-action")
	if err != nil {
		return f, err
	}
	outcomeCode, err := withSystem("outcome", "http://hl7.org/fhir/audit-event-outcome")
	if err != nil {
		return f, err
	}
	switch v := action; v {
	case "":
	case "C", "R", "U", "D", "E":
		f.CRUDE = v
	default:
		return f, bad("action", "must be C, R, U, D or E")
	}
	switch v := outcomeCode; v {
	case "":
	case "0", "success":
		f.Outcome = audit.OutcomeSuccess
	case "4", "denied":
		f.Outcome = audit.OutcomeDenied
	case "8", "12", "error":
		f.Outcome = audit.OutcomeError
	default:
		return f, bad("outcome", "must be 0, 4 or 8")
	}
	for _, d := range q["date"] {
		if err := applyDate(&f, d); err != nil {
			return f, bad("date", err.Error())
		}
	}
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, bad("_count", "must be a positive integer")
		}
		f.Limit = min(n, index.MaxLimit)
	}
	if v := q.Get("_before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, bad("_before", "must be a position in the log")
		}
		f.Before = n
	}
	return f, nil
}

// applyDate narrows f by one FHIR date parameter value: a prefix (eq,
// ge, gt, le, lt; eq by default) and a date, a year-month, a year or a
// dateTime, each meaning the interval it covers.
func applyDate(f *index.Filter, v string) error {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	lo, hi, err := dateRange(v)
	if err != nil {
		return err
	}
	later := func(a, b time.Time) time.Time {
		if a.IsZero() || b.After(a) {
			return b
		}
		return a
	}
	earlier := func(a, b time.Time) time.Time {
		if a.IsZero() || b.Before(a) {
			return b
		}
		return a
	}
	switch prefix {
	case "eq":
		f.Since, f.Until = later(f.Since, lo), earlier(f.Until, hi)
	case "ge":
		f.Since = later(f.Since, lo)
	case "gt":
		f.Since = later(f.Since, hi)
	case "le":
		f.Until = earlier(f.Until, hi)
	case "lt":
		f.Until = earlier(f.Until, lo)
	default:
		return errors.New("the prefix must be eq, ge, gt, le or lt")
	}
	return nil
}

// dateRange returns the half-open interval [lo, hi) a FHIR date or
// dateTime value covers.
func dateRange(v string) (lo, hi time.Time, err error) {
	for _, l := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Microsecond) }},
	} {
		if t, err := time.Parse(l.layout, v); err == nil {
			return t.UTC(), l.next(t).UTC(), nil
		}
	}
	return lo, hi, errors.New("must be a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)")
}
