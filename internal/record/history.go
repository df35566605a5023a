package record

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// History page sizes: FHIR leaves them to the server.
const (
	defaultHistoryCount = 50
	maxHistoryCount     = 1000
)

// maxHistoryScan bounds the versions one history page reads to fill
// itself with versions the caller may see (most are excluded inside the
// query already; the rest are decided one by one).
const maxHistoryScan = 5000

// History returns a history Bundle for one resource (typ and id), a type
// (typ only) or the whole system (neither). Parameters: _count, _since
// (versions written at or after the instant, as R4 says),
// _at (the versions current at some time in the period a date denotes:
// "2024-01-01" is that whole day) and _page (an opaque cursor from a
// previous page's next link).
//
// Every version is decided twice: on itself (its owner and labels) and
// on the resource's current version, as a vread is, so a version of a
// record labelled sensitive since, or moved to another patient, is not
// served. Type history is narrowed inside the query on the current
// version's owner and labels, and a page is filled with visible
// versions, so its size and its next link do not reveal hidden writes.
// System history is for callers who may see every resource of every
// type stored (service credentials): anyone else is refused, since no
// narrowing can hide the server-wide write volume from its paging.
//
// Other parameters are refused (ErrInvalid, not-supported) unless
// opt.Lenient, when they are ignored and named in the Bundle's meta.tag
// (a history Bundle's entries must each be a version: bdl-3, bdl-4).
func (s *Service) History(ctx context.Context, c Caller, typ, id string, vals url.Values, opt SearchOptions) ([]byte, error) {
	base := opt.BaseURL
	ignored, err := historyIgnored(vals, opt.Lenient)
	if err != nil {
		return nil, err
	}
	q := storage.HistoryQuery{Type: typ, ID: id, Count: defaultHistoryCount}
	act := historyAction(typ, id)
	if tok := vals.Get("_page"); tok != "" {
		cur, err := s.openCursor("history", tok)
		if err != nil {
			return nil, err
		}
		if cur.Type != typ || cur.ID != id {
			return nil, invalid("the paging cursor belongs to another history")
		}
		q.Offset, q.Count, q.Since = cur.Offset, cur.Count, time.UnixMicro(cur.Since)
		if cur.Since == 0 {
			q.Since = time.Time{}
		}
		if cur.AtTo != 0 {
			q.AtFrom, q.AtTo = time.UnixMicro(cur.AtFrom), time.UnixMicro(cur.AtTo)
		}
	} else {
		if v := vals.Get("_count"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, invalid("_count must be a positive integer")
			}
			q.Count = min(n, maxHistoryCount)
		}
		if v := vals.Get("_since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, invalid("_since must be an instant such as 2024-01-01T00:00:00Z")
			}
			q.Since = t
		}
		if v := vals.Get("_at"); v != "" {
			if len(vals["_at"]) > 1 {
				return nil, invalid("_at may be given once")
			}
			lo, hi, ok := search.DateRange(v)
			if !ok {
				return nil, invalid("_at must be a date, dateTime or instant such as 2024-01-01 or 2024-01-01T10:00:00Z (no prefix)")
			}
			q.AtFrom, q.AtTo = lo, hi
		}
	}
	action := act
	switch {
	case id != "":
		// An instance's history is decided on its current version.
		cur, err := s.store.Current(ctx, typ, id)
		if missing(err) {
			return nil, s.recordMiss(ctx, c, act, typ+"/"+id, storageError(err))
		}
		if err != nil {
			return nil, storageError(err)
		}
		if err := s.decideOnCurrent(ctx, c, act, cur); err != nil {
			return nil, err
		}
	case typ != "":
		if err := s.narrowHistory(ctx, c, &q); err != nil {
			return nil, err
		}
	default:
		if err := s.systemHistoryAllowed(ctx, c); err != nil {
			return nil, err
		}
	}
	// SMART v2 scopes: instance history needs "r", type and system
	// history "s" (authz.HistoryType); the policies decide both as history.
	level := authz.History
	if id == "" {
		level = authz.HistoryType
	}
	want := q.Count
	type req struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type resp struct {
		Status       string          `json:"status"`
		Etag         string          `json:"etag,omitempty"`
		LastModified string          `json:"lastModified,omitempty"`
		Outcome      json.RawMessage `json:"outcome,omitempty"`
	}
	type ent struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Request  req             `json:"request"`
		Response resp            `json:"response"`
	}
	evs := newEvents(s.event(c, action))
	entries := make([]ent, 0, want)
	current := map[string]storage.Version{} // type/id -> current version, decided
	denied := map[string]bool{}             // type/id whose current version is denied
	raw, scanned, next := q.Offset, 0, -1
	exhausted := false
scan:
	for scanned < maxHistoryScan {
		q.Offset = raw
		q.Count = min(max(want+1-len(entries), 50), maxHistoryCount+1)
		vs, err := s.store.History(ctx, q)
		if err != nil {
			return nil, storageError(err)
		}
		if id != "" && len(vs) == 0 && raw == 0 {
			if _, err := s.store.Current(ctx, typ, id); missing(err) {
				return nil, s.recordMiss(ctx, c, act, typ+"/"+id, storageError(err))
			} else if err != nil {
				return nil, storageError(err)
			}
		}
		for _, v := range vs {
			if len(entries) == want {
				next = raw // a further visible version: the next page starts here
				break scan
			}
			raw++
			scanned++
			var body []byte
			if !v.Deleted {
				b, err := s.open(ctx, v)
				if err != nil {
					if StatusCode(err) == statusGone {
						continue // erased patient: its versions no longer exist
					}
					if errors.Is(err, ErrTampered) {
						// One entry names the row; the history goes on.
						e := ent{FullURL: base + "/" + v.Type + "/" + v.ID, Request: req{Method: methodPut, URL: v.Type + "/" + v.ID},
							Response: resp{Status: statusLine(statusInternal), Outcome: s.tamperedOutcome(v)}}
						if v.Version == 1 {
							e.Request = req{Method: methodPost, URL: v.Type}
						}
						entries = append(entries, e)
						continue
					}
					return nil, err
				}
				body = b
			}
			// Each version is decided on its own (owner and labels; a
			// delete marker on those of the version it deleted)...
			basis := body
			if v.Deleted {
				basis, err = s.decisionBody(ctx, s.store, v)
				if errors.Is(err, ErrTampered) {
					// The version it deleted is tampered (an outcome
					// entry of its own): the marker is served by the
					// rule of decideOnCurrent, else left out.
					if !s.admitsAnyContent(ctx, c, v.Type, v.Owner) {
						continue
					}
					basis, err = nil, nil
				}
				if err != nil {
					return nil, err
				}
			}
			d, err := s.checkAs(ctx, c, action, level, v, basis)
			if err != nil {
				if StatusCode(err) == statusUnavailable {
					return nil, err
				}
				continue
			}
			// ...and on the resource's current version.
			if id == "" {
				ok, err := s.currentAllows(ctx, c, action, v, current, denied)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			if d.Mask && body != nil {
				if body, err = authz.Redact(body); err != nil {
					continue
				}
			}
			e := ent{FullURL: base + "/" + v.Type + "/" + v.ID,
				Response: resp{Etag: ETag(v.Version), LastModified: v.LastUpdated.UTC().Format(time.RFC3339Nano)}}
			switch {
			case v.Deleted:
				e.Request = req{Method: methodDelete, URL: v.Type + "/" + v.ID}
				e.Response.Status = statusLine(statusGone)
			default:
				e.Resource = body
				e.Request = req{Method: methodPut, URL: v.Type + "/" + v.ID}
				if v.Version == 1 {
					e.Request = req{Method: methodPost, URL: v.Type}
					e.Response.Status = statusLine(statusCreated)
				} else {
					e.Response.Status = statusLine(statusOK)
				}
			}
			evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
			entries = append(entries, e)
		}
		if len(vs) < q.Count {
			exhausted = true
			break
		}
	}
	if next < 0 && !exhausted && len(entries) > 0 {
		next = raw // the scan budget ran out: continue from where it stopped
	}
	links := []map[string]string{{"relation": "self", "url": base + historyPath(typ, id)}}
	if next >= 0 {
		var since int64
		if !q.Since.IsZero() {
			since = q.Since.UnixMicro()
		}
		cur := cursor{Type: typ, ID: id, Offset: next, Count: want, Since: since}
		if !q.AtTo.IsZero() {
			cur.AtFrom, cur.AtTo = q.AtFrom.UnixMicro(), q.AtTo.UnixMicro()
		}
		tok, err := s.sealCursor("history", cur)
		if err != nil {
			return nil, err
		}
		links = append(links, map[string]string{"relation": "next", "url": base + historyPath(typ, id) + "?_page=" + url.QueryEscape(tok)})
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return nil, err
	}
	bundle := map[string]any{
		"resourceType": "Bundle", "id": s.newID(), "type": "history",
		"link": links, "entry": entries,
	}
	if len(ignored) > 0 {
		bundle["meta"] = map[string]any{"tag": []any{map[string]any{
			"system": "http://phivault.dev/fhir/CodeSystem/search", "code": "ignored-parameters",
			"display": "ignored: " + strings.Join(ignored, ", "),
		}}}
	}
	return json.Marshal(bundle)
}

// historyParams are the parameters of a history interaction.
var historyParams = map[string]bool{"_count": true, "_since": true, "_at": true, "_page": true, "_format": true, "_pretty": true}

// historyIgnored returns the parameters of vals that history does not
// understand, sorted and safe to echo; without lenient, the first one is
// an error. _offset, for one, is not served: history pages through a
// sealed cursor whose offset counts rows the caller may not see.
func historyIgnored(vals url.Values, lenient bool) ([]string, error) {
	var out []string
	for k := range vals {
		if historyParams[k] {
			continue
		}
		name := k
		if !paramNameRE.MatchString(name) {
			name = "(unprintable)"
		}
		if !lenient {
			return nil, fail(ErrInvalid, "not-supported", "the history parameter "+name+" is not supported (history takes _count, _since, _at and the _page of a next link)")
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// narrowHistory narrows a type history inside the query: each version's
// own owner, and its resource's current owner and labels (the narrowing
// clauses of a search, applied to the current version).
func (s *Service) narrowHistory(ctx context.Context, c Caller, q *storage.HistoryQuery) error {
	f, err := c.guard().Narrow(ctx, authz.HistoryType, q.Type)
	if err != nil {
		return s.recordDenial(ctx, s.denial(c, audit.ActionHistoryType, storage.Version{Type: q.Type}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	allowed, err := s.perRow(ctx, c, s.store, storage.Query{Type: q.Type}, f, audit.ActionHistory)
	if err != nil {
		return s.recordDenial(ctx, err)
	}
	if q.Current, err = s.narrowing(q.Type, f, allowed); err != nil {
		return err
	}
	// A version's own owner: the per-row owners' versions pass here and
	// are held to the allowed ids by the current-version clauses.
	if f.All {
		except := slices.DeleteFunc(slices.Clone(f.Except), func(o string) bool { return slices.Contains(f.PerRow, o) })
		q.Owners = &storage.OwnerSet{In: asOwners(except), Except: true}
	} else {
		q.Owners = &storage.OwnerSet{In: asOwners(slices.Concat(f.Owners, f.PerRow))}
	}
	return nil
}

// decideOnCurrent decides caller c's action a on cur, a resource's
// current version, as instance history and the vread of an older
// version do, recording a denial. A current version that failed its
// integrity check (tampered.go) has unknown labels: it admits only a
// caller the policies admit on its owner and to every resource of the
// type with that owner whatever its content; anyone else is denied
// (fail closed), as on the owner alone when that denies.
func (s *Service) decideOnCurrent(ctx context.Context, c Caller, a audit.Action, cur storage.Version) error {
	body, err := s.decisionBody(ctx, s.store, cur)
	switch {
	case errors.Is(err, ErrTampered):
		if _, derr := s.check(ctx, c, a, cur, nil); derr != nil {
			return s.recordDenial(ctx, derr)
		}
		if !s.admitsAnyContent(ctx, c, cur.Type, cur.Owner) {
			return s.recordDenial(ctx, s.denial(c, a, cur, authz.Decision{Policies: []string{"undecidable"}}, err))
		}
		return nil
	case err != nil:
		return err
	}
	if _, err := s.check(ctx, c, a, cur, body); err != nil {
		return s.recordDenial(ctx, err)
	}
	return nil
}

// admitsAnyContent reports whether the policies admit caller c to the
// history of every resource of type typ owned by owner, whatever its
// content: no rule on labels and no per-resource decision (a consent's
// criteria) applies to that owner. Anything undecidable is false.
func (s *Service) admitsAnyContent(ctx context.Context, c Caller, typ string, o ident.Owner) bool {
	owner := string(o) // as authorization names it
	f, err := c.guard().Narrow(ctx, authz.HistoryType, typ)
	if err != nil || slices.Contains(f.PerRow, owner) {
		return false
	}
	admitted := slices.Contains(f.Owners, owner)
	if f.All {
		admitted = !slices.Contains(f.Except, owner)
	}
	if !admitted {
		return false
	}
	for _, r := range f.Labels {
		if slices.Contains(r.Owners, owner) == r.Except {
			return false // resources of that owner carrying r.Label are hidden
		}
	}
	return true
}

// systemHistoryAllowed admits system history for a caller whose
// narrowing admits every resource of every type stored; anyone else is
// refused (audited).
func (s *Service) systemHistoryAllowed(ctx context.Context, c Caller) error {
	types, err := s.store.Types(ctx)
	if err != nil {
		return storageError(err)
	}
	deny := func(cause error, policies ...string) error {
		e := s.denial(c, audit.ActionHistorySystem, storage.Version{}, authz.Decision{Policies: policies}, cause)
		if cause == nil {
			e.Kind = ErrForbidden
			e.Issues = []Issue{{Code: "forbidden", Diagnostic: "system-level history needs access to every resource; use type-level or instance history"}}
			e.denied.Status = statusForbidden
		}
		return s.recordDenial(ctx, e)
	}
	for _, t := range types {
		f, err := c.guard().Narrow(ctx, authz.HistoryType, t)
		if err != nil {
			return deny(err, "undecidable")
		}
		if !f.All || len(f.Except) > 0 || len(f.Labels) > 0 || len(f.PerRow) > 0 {
			return deny(nil, "system-history-restricted")
		}
	}
	return nil
}

// currentAllows decides a version of another resource's history (type
// or system level) on the resource's current version too. Decisions
// are kept per resource for the page.
func (s *Service) currentAllows(ctx context.Context, c Caller, a audit.Action, v storage.Version, current map[string]storage.Version, denied map[string]bool) (bool, error) {
	key := v.Type + "/" + v.ID
	if denied[key] {
		return false, nil
	}
	if _, ok := current[key]; ok {
		return true, nil
	}
	cur, err := s.store.Current(ctx, v.Type, v.ID)
	if err != nil {
		return false, storageError(err)
	}
	if cur.Version != v.Version || cur.Deleted {
		body, err := s.decisionBody(ctx, s.store, cur)
		if errors.Is(err, ErrTampered) {
			// The current version failed its integrity check (it is an
			// outcome entry of its own): its labels are unknown, so the
			// older versions are served only to a caller admitted to
			// that owner whatever the content, and hidden from anyone
			// else, as in an instance history.
			if _, err := s.checkAs(ctx, c, a, authz.HistoryType, cur, nil); err != nil {
				if StatusCode(err) == statusUnavailable {
					return false, err
				}
				denied[key] = true
				return false, nil
			}
			if !s.admitsAnyContent(ctx, c, v.Type, cur.Owner) {
				denied[key] = true
				return false, nil
			}
			current[key] = cur
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if _, err := s.checkAs(ctx, c, a, authz.HistoryType, cur, body); err != nil {
			if StatusCode(err) == statusUnavailable {
				return false, err
			}
			denied[key] = true
			return false, nil
		}
	}
	current[key] = cur
	return true, nil
}

// historyAction is the audit subtype of a history request (FHIR
// history-instance, history-type, history-system).
func historyAction(typ, id string) audit.Action {
	switch {
	case typ == "":
		return audit.ActionHistorySystem
	case id == "":
		return audit.ActionHistoryType
	}
	return audit.ActionHistory
}

func historyPath(typ, id string) string {
	switch {
	case typ == "":
		return "/_history"
	case id == "":
		return "/" + typ + "/_history"
	default:
		return "/" + typ + "/" + id + "/_history"
	}
}

// cursor is the state behind an opaque next link. It is sealed with the
// token key, so it cannot be forged and does not show search values in
// URLs or logs.
type cursor struct {
	Type   string     `json:"t,omitempty"`
	ID     string     `json:"i,omitempty"`
	Offset int        `json:"o,omitempty"`
	Count  int        `json:"c,omitempty"`
	Since  int64      `json:"s,omitempty"`
	AtFrom int64      `json:"af,omitempty"` // _at (history)
	AtTo   int64      `json:"at,omitempty"`
	Query  url.Values `json:"q,omitempty"`
	After  string     `json:"a,omitempty"`
}

func (s *Service) sealCursor(purpose string, c cursor) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	tok, err := s.keys.SealToken("cursor/"+purpose, b)
	if errors.Is(err, keys.ErrTokenTooLong) {
		// The links carry the whole query sealed: a query too long for
		// a link is the client's to shorten.
		return "", failCause(ErrInvalid, "too-costly", "the search is too long to be carried in its paging links: shorten its parameters", err)
	}
	return tok, err
}

func (s *Service) openCursor(purpose, tok string) (cursor, error) {
	var c cursor
	if len(tok) > 8192 {
		return c, invalid("the paging cursor is invalid or expired")
	}
	b, err := s.keys.OpenToken("cursor/"+purpose, tok)
	if err != nil {
		return c, invalid("the paging cursor is invalid or expired")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, invalid("the paging cursor is invalid or expired")
	}
	return c, nil
}
