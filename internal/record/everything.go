package record

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// $everything page sizes.
const (
	defaultEverythingCount = 500
	maxEverythingCount     = 1000
)

// Everything returns the Patient and every current resource in its
// compartment (everything sealed with the patient's key), as a searchset
// Bundle paged with an opaque cursor.
func (s *Service) Everything(ctx context.Context, c Caller, id string, vals url.Values, base string) ([]byte, error) {
	owner := "Patient/" + id
	count := defaultEverythingCount
	var purpose string
	var policies []string
	var after storage.VersionRef
	if tok := vals.Get("_page"); tok != "" {
		cur, err := s.openCursor("everything", tok)
		if err != nil {
			return nil, err
		}
		if cur.ID != id {
			return nil, invalid("the paging cursor belongs to another patient")
		}
		// A cursor is no grant: decide again on every page.
		p := storage.Version{Type: "Patient", ID: id, Owner: owner}
		if pv, err := s.store.Current(ctx, "Patient", id); err == nil {
			p = pv
		}
		d, err := s.check(ctx, c, audit.ActionEverything, p, nil)
		if err != nil {
			return nil, s.recordDenial(ctx, err)
		}
		purpose, policies = d.Purpose, d.Policies
		count = cur.Count
		t, i, _ := cutRef(cur.After)
		after = storage.VersionRef{Type: t, ID: i}
	} else {
		p, err := s.store.Current(ctx, "Patient", id)
		if err != nil {
			return nil, storageError(err)
		}
		if p.Deleted {
			return nil, gone("the patient was deleted or erased")
		}
		body, err := s.open(ctx, p)
		if err != nil {
			return nil, err
		}
		d, err := s.check(ctx, c, audit.ActionEverything, p, body)
		if err != nil {
			return nil, s.recordDenial(ctx, err)
		}
		purpose = d.Purpose
		policies = d.Policies
		if v := vals.Get("_count"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, invalid("_count must be a positive integer")
			}
			count = min(n, maxEverythingCount)
		}
	}
	vs, err := s.store.Owned(ctx, owner, after, count+1)
	if err != nil {
		return nil, storageError(err)
	}
	more := len(vs) > count
	if more {
		vs = vs[:count]
	}
	type ent struct {
		FullURL  string            `json:"fullUrl"`
		Resource json.RawMessage   `json:"resource"`
		Search   map[string]string `json:"search"`
	}
	ev := s.event(c, audit.ActionEverything)
	ev.Patients = []string{owner}
	decided(&ev, authz.Decision{Policies: policies, Purpose: purpose})
	entries := make([]ent, 0, len(vs))
	for _, v := range vs {
		body, err := s.open(ctx, v)
		if err != nil {
			if errors.Is(err, ErrGone) {
				return nil, gone("the patient's record was erased")
			}
			return nil, err
		}
		// Every entry is decided on its own labels: a sensitive
		// resource the caller may not see is left out.
		d, err := s.check(ctx, c, audit.ActionRead, v, body)
		if err != nil {
			if AsError(err).Status == http.StatusServiceUnavailable {
				return nil, err
			}
			continue
		}
		if d.Mask {
			if body, err = authz.Redact(body); err != nil {
				continue
			}
		}
		ev.Entities = append(ev.Entities, entityRef(v.Type, v.ID, v.Version))
		entries = append(entries, ent{FullURL: base + "/" + v.Type + "/" + v.ID, Resource: body, Search: map[string]string{"mode": "match"}})
	}
	self := base + "/Patient/" + id + "/$everything"
	links := []map[string]string{{"relation": "self", "url": self}}
	if more {
		last := vs[len(vs)-1]
		tok, err := s.sealCursor("everything", cursor{ID: id, Count: count, After: last.Type + "/" + last.ID})
		if err != nil {
			return nil, err
		}
		links = append(links, map[string]string{"relation": "next", "url": self + "?_page=" + url.QueryEscape(tok)})
	}
	if err := s.recordRead(ctx, ev); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"resourceType": "Bundle", "id": s.newID(), "type": "searchset", "link": links, "entry": entries})
}

func cutRef(ref string) (typ, id string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], true
		}
	}
	return "", "", false
}

// Erase crypto-shreds a patient: its data key is destroyed, so every
// version of every resource in its compartment (and any backup of them)
// can no longer be decrypted; its index rows are deleted and its
// resources read as gone. The audit trail, sealed with the log key, stays.
func (s *Service) Erase(ctx context.Context, c Caller, id string) (int64, error) {
	owner := "Patient/" + id
	if c.Guard != nil {
		p, err := s.store.Current(ctx, "Patient", id)
		if errors.Is(err, storage.ErrNotFound) {
			p = storage.Version{Type: "Patient", ID: id, Owner: owner}
		} else if err != nil {
			return 0, storageError(err)
		}
		if _, err := s.check(ctx, c, audit.ActionErase, p, nil); err != nil {
			return 0, s.recordDenial(ctx, err)
		}
	}
	var n int64
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Key(ctx, owner)
		if err != nil {
			return err
		}
		if rec.Shredded {
			return gone("this patient's record was already erased")
		}
		if n, err = tx.Shred(ctx, owner); err != nil {
			return err
		}
		ev := s.event(c, audit.ActionErase)
		ev.Patients = []string{owner}
		ev.Ledger = []audit.Commit{eraseCommit(owner)}
		r, err := s.log.Seal(ev)
		if err != nil {
			return unavailable(err)
		}
		return appendAudit(ctx, tx, r)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("no such patient")
	}
	if err != nil {
		return 0, storageError(err)
	}
	s.forgetKey(owner)
	s.changed("Patient", owner)
	return n, nil
}
