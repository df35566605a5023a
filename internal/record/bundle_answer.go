package record

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// A Bundle's answer: its GET entries, run after the writes, and the
// response Bundle of every entry.

// runReads performs GET entries after the writes, and fills in bodies of
// written entries when they are wanted.
func (s *Service) runReads(ctx context.Context, c Caller, entries []*entry) {
	// The sorted searches of one Bundle share one bound (search_sort.go).
	ctx = withSortBudget(ctx, BundleSortMatches)
	for _, e := range entries {
		if e.method != methodGet || e.err != nil {
			continue
		}
		if e.id != "" && e.query == "" {
			st, err := s.Read(ctx, c, e.typ, e.id)
			if err != nil {
				e.err = AsError(err)
				continue
			}
			e.status, e.body, e.version, e.modified = statusOK, st.JSON, st.Version, st.LastUpdated
			continue
		}
		vals, err := url.ParseQuery(e.query)
		if err != nil {
			e.err = invalid("entry.request.url has an invalid query")
			continue
		}
		page, err := s.Search(ctx, c, e.typ, vals, SearchOptions{})
		if err != nil {
			e.err = AsError(err)
			continue
		}
		e.status, e.body = statusOK, page.Bundle
	}
}

func (s *Service) responseBundle(kind string, entries []*entry, ret Return) ([]byte, error) {
	type resp struct {
		Status       string          `json:"status"`
		Location     string          `json:"location,omitempty"`
		Etag         string          `json:"etag,omitempty"`
		LastModified string          `json:"lastModified,omitempty"`
		Outcome      json.RawMessage `json:"outcome,omitempty"`
	}
	type ent struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Response resp            `json:"response"`
	}
	out := struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Type         string `json:"type"`
		Entry        []ent  `json:"entry"`
	}{ResourceType: "Bundle", ID: s.newID(), Type: kind + "-response", Entry: make([]ent, 0, len(entries))}
	for _, e := range entries {
		var x ent
		if e.err != nil {
			x.Response.Status = statusLine(StatusCode(e.err))
			oo, _ := json.Marshal(OperationOutcome(e.err))
			x.Response.Outcome = oo
			out.Entry = append(out.Entry, x)
			continue
		}
		x.Response.Status = statusLine(e.status)
		if e.location != "" {
			x.Response.Location = e.location
			x.FullURL = strings.SplitN(e.location, "/_history/", 2)[0]
		}
		if e.version > 0 {
			x.Response.Etag = ETag(e.version)
			x.Response.LastModified = e.modified.UTC().Format(time.RFC3339Nano)
		}
		switch {
		case e.method == methodGet:
			x.Resource = e.body
		case ret == ReturnRepresentation && e.res != nil && e.existing.ID == "":
			b, err := e.res.Marshal()
			if err != nil {
				return nil, err
			}
			x.Resource = b
		}
		out.Entry = append(out.Entry, x)
	}
	return json.Marshal(out)
}
