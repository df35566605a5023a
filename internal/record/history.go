package record

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// History page sizes: FHIR leaves them to the server.
const (
	defaultHistoryCount = 50
	maxHistoryCount     = 1000
)

// History returns a history Bundle for one resource (typ and id), a type
// (typ only) or the whole system (neither). Parameters: _count, _since,
// and _page (an opaque cursor from a previous page's next link).
func (s *Service) History(ctx context.Context, c Caller, typ, id string, vals url.Values, base string) ([]byte, error) {
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
	}
	if id != "" && c.Guard != nil {
		// An instance's history is decided on its current version.
		cur, err := s.store.Current(ctx, typ, id)
		if missing(err) {
			return nil, s.recordMiss(ctx, c, act, typ+"/"+id, storageError(err))
		}
		if err != nil {
			return nil, storageError(err)
		}
		var body []byte
		if !cur.Deleted {
			if body, err = s.open(ctx, cur); err != nil && AsError(err).Status != http.StatusGone {
				return nil, err
			}
		}
		if _, err := s.check(ctx, c, act, cur, body); err != nil {
			return nil, s.recordDenial(ctx, err)
		}
	}
	if id == "" && typ != "" && c.Guard != nil {
		// Type history is narrowed inside the query to the owners the
		// caller may see (labels are decided per version below).
		f, err := c.Guard.Narrow(ctx, authz.History, typ)
		if err != nil {
			return nil, s.recordDenial(ctx, s.denial(c, act, storage.Version{Type: typ}, authz.Decision{Policies: []string{"undecidable"}}, err))
		}
		switch {
		case f.All:
			q.Owners = &storage.OwnerSet{In: f.Except, Except: true}
		default:
			q.Owners = &storage.OwnerSet{In: f.Owners}
		}
	}
	want := q.Count
	q.Count = want + 1 // one more tells whether there is a next page
	vs, err := s.store.History(ctx, q)
	if err != nil {
		return nil, storageError(err)
	}
	if id != "" && len(vs) == 0 && q.Offset == 0 {
		if _, err := s.store.Current(ctx, typ, id); missing(err) {
			return nil, s.recordMiss(ctx, c, act, typ+"/"+id, storageError(err))
		} else if err != nil {
			return nil, storageError(err)
		}
	}
	more := len(vs) > want
	if more {
		vs = vs[:want]
	}
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
	ev := s.event(c, act)
	entries := make([]ent, 0, len(vs))
	type filed struct{ purpose, entity, patient string }
	var added []filed
	policies := map[string]bool{}
	for _, v := range vs {
		var body []byte
		if !v.Deleted {
			b, err := s.open(ctx, v)
			if err != nil {
				if AsError(err).Status == http.StatusGone {
					continue // erased patient: its versions no longer exist
				}
				if errors.Is(err, ErrTampered) {
					e := ent{FullURL: base + "/" + v.Type + "/" + v.ID, Request: req{Method: http.MethodPut, URL: v.Type + "/" + v.ID},
						Response: resp{Status: statusLine(http.StatusInternalServerError), Outcome: s.tamperedOutcome(v)}}
					if v.Version == 1 {
						e.Request = req{Method: http.MethodPost, URL: v.Type}
					}
					entries = append(entries, e)
					continue
				}
				return nil, err
			}
			body = b
		}
		// Each version is decided on its own (owner and labels); a
		// version the caller may not see is left out.
		d, err := s.check(ctx, c, act, v, body)
		if err != nil {
			if AsError(err).Status == http.StatusServiceUnavailable {
				return nil, err
			}
			continue
		}
		if d.Mask && body != nil {
			if body, err = authz.Redact(body); err != nil {
				continue
			}
		}
		for _, id := range d.Policies {
			policies[id] = true
		}
		e := ent{FullURL: base + "/" + v.Type + "/" + v.ID,
			Response: resp{Etag: ETag(v.Version), LastModified: v.LastUpdated.UTC().Format(time.RFC3339Nano)}}
		switch {
		case v.Deleted:
			e.Request = req{Method: http.MethodDelete, URL: v.Type + "/" + v.ID}
			e.Response.Status = statusLine(http.StatusGone)
		default:
			e.Resource = body
			e.Request = req{Method: http.MethodPut, URL: v.Type + "/" + v.ID}
			if v.Version == 1 {
				e.Request = req{Method: http.MethodPost, URL: v.Type}
				e.Response.Status = statusLine(http.StatusCreated)
			} else {
				e.Response.Status = statusLine(http.StatusOK)
			}
		}
		added = append(added, filed{d.Purpose, entityRef(v.Type, v.ID, v.Version), patientOfOwner(v.Owner)})
		entries = append(entries, e)
	}
	links := []map[string]string{{"relation": "self", "url": base + historyPath(typ, id)}}
	if more {
		var since int64
		if !q.Since.IsZero() {
			since = q.Since.UnixMicro()
		}
		tok, err := s.sealCursor("history", cursor{Type: typ, ID: id, Offset: q.Offset + want, Count: want, Since: since})
		if err != nil {
			return nil, err
		}
		links = append(links, map[string]string{"relation": "next", "url": base + historyPath(typ, id) + "?_page=" + url.QueryEscape(tok)})
	}
	for id := range policies {
		ev.Policies = append(ev.Policies, id)
	}
	slices.Sort(ev.Policies)
	// Each version is filed under the purpose of its own decision
	// (purpose.go).
	split := newPurposeSplit(ev)
	for _, a := range added {
		split.add(a.purpose, a.entity, a.patient)
	}
	if err := split.record(ctx, s); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"resourceType": "Bundle", "id": s.newID(), "type": "history",
		"link": links, "entry": entries,
	})
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
	Query  url.Values `json:"q,omitempty"`
	After  string     `json:"a,omitempty"`
}

func (s *Service) sealCursor(purpose string, c cursor) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return s.keys.SealToken("cursor/"+purpose, b)
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
