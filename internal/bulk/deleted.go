package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/record"
)

// The manifest's deleted files (Bulk Data IG v2, "Response - Complete
// Status", deleted): with _since, one NDJSON file of FHIR transaction
// Bundles, one per resource of an exported type deleted after _since,
// each with a single entry whose request is DELETE Type/id.
//
// Deletions are read from the type-level history with _since, run as
// the client and decided as a disclosure like every other search of the
// export (authz.Export through exportGuard): a delete marker is decided
// on the owner and labels of the version it deleted, and on the
// resource's current version, so a deleted resource of a patient the
// client may not receive is never listed. What cannot be decided is
// left out, never listed:
//
//   - Patient and Group level exports list no deletions: the history of
//     a type does not tell which patient's compartment a deleted
//     resource was in, so deletions outside the cohort could be named.
//   - A type with _typeFilter lists none: a deleted resource cannot be
//     matched against the filter.
//   - A de-identified export lists none: the ids would undo the
//     pseudonyms.

// MaxDeletedScan bounds the history versions of one type an export
// reads to find its deletions; a type with more changes since _since
// lists none (counted in the error file).
const MaxDeletedScan = 1_000_000

// historyPage is the part of a history Bundle the deletions are read from.
type historyPage struct {
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Request struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
		Response struct {
			Etag         string `json:"etag"`
			LastModified string `json:"lastModified"`
		} `json:"response"`
	} `json:"entry"`
}

// wantsDeleted reports whether the export lists deletions at all.
func (r *run) wantsDeleted() bool {
	return !r.req.Since.IsZero() && r.req.Level == LevelSystem && r.req.Deidentify == ""
}

// deleted writes the deletions of types after _since (see above).
func (r *run) deleted(ctx context.Context, types []string) error {
	for i, typ := range types {
		if len(r.req.Filters[typ]) > 0 {
			continue
		}
		if err := r.setPhase(ctx, fmt.Sprintf("listing deleted %s (type %d of %d)", typ, i+1, len(types))); err != nil {
			return err
		}
		ids, err := r.deletedOf(ctx, typ)
		if err := r.searchErr(err, reasonDeletedUndecided); err != nil {
			return err
		}
		for _, id := range ids {
			if err := r.w.addDeleted(ctx, typ, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// latest is the newest version of one resource seen in its history.
type latest struct {
	version int64
	deleted bool
}

// deletedOf returns the ids of typ's resources whose latest version
// written after _since is a delete marker visible to the client, in the
// order of the history.
func (r *run) deletedOf(ctx context.Context, typ string) ([]string, error) {
	since := r.req.Since
	vals := url.Values{"_since": {since.UTC().Format(time.RFC3339Nano)}, "_count": {strconv.Itoa(r.s.o.PageSize)}}
	seen := map[string]latest{}
	var order []string
	for {
		b, err := r.s.o.Record.History(ctx, r.caller, typ, "", vals, record.SearchOptions{BaseURL: r.s.o.BaseURL})
		if err != nil {
			return nil, err
		}
		var p historyPage
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("reading a history page: %w", err)
		}
		for _, e := range p.Entry {
			at, err := time.Parse(time.RFC3339Nano, e.Response.LastModified)
			if err != nil || !at.After(since) {
				continue // _since is exclusive for exports, as for the output
			}
			ver, ok := etagVersion(e.Response.Etag)
			if !ok {
				continue // an entry for a row that failed its integrity check
			}
			var id string
			switch e.Request.Method {
			case "DELETE", "PUT":
				id = strings.TrimPrefix(e.Request.URL, typ+"/")
			default:
				continue // a create (POST Type) is never the latest after a delete of the same id
			}
			if id == "" || !validID(id) {
				continue
			}
			l, ok := seen[id]
			if !ok {
				order = append(order, id)
				if len(seen) >= MaxDeletedScan {
					return nil, errors.New("too many changes since _since to list deletions")
				}
			}
			if !ok || ver > l.version {
				seen[id] = latest{version: ver, deleted: e.Request.Method == "DELETE"}
			}
		}
		if err := r.renew(ctx); err != nil {
			return nil, err
		}
		next := ""
		for _, l := range p.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if next == "" {
			break
		}
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("_page") == "" {
			return nil, errors.New("a history page's next link has no cursor")
		}
		vals = url.Values{"_page": {u.Query().Get("_page")}}
	}
	var out []string
	for _, id := range order {
		if seen[id].deleted {
			out = append(out, id)
		}
	}
	return out, nil
}

// etagVersion reads the version of a weak ETag W/"n".
func etagVersion(etag string) (int64, bool) {
	v, ok := strings.CutPrefix(etag, `W/"`)
	if !ok {
		return 0, false
	}
	v, ok = strings.CutSuffix(v, `"`)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n > 0
}
