package record

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// $everything page sizes.
const (
	defaultEverythingCount = 500
	maxEverythingCount     = 1000
	// maxEverythingScan bounds the resources one page reads to fill
	// itself with entries the caller may see.
	maxEverythingScan = 5000
)

// Everything returns the Patient and every current resource in its
// compartment (everything sealed with the patient's key), as a searchset
// Bundle paged with an opaque cursor. Parameters (everything_filter.go):
// _count, _since, _type, start and end.
func (s *Service) Everything(ctx context.Context, c Caller, id string, vals url.Values, base string) ([]byte, error) {
	owner := ident.PatientOwner(id)
	count := defaultEverythingCount
	var purpose string
	var policies []string
	var after storage.VersionRef
	var filters url.Values
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
		count, filters = cur.Count, cur.Query
		t, i, _ := cutRef(cur.After)
		after = storage.VersionRef{Type: t, ID: i}
	} else {
		filters = everythingFilters(vals)
		if _, err := s.everythingFilter(filters); err != nil {
			return nil, err // refused before anything is read
		}
		p, err := s.store.Current(ctx, "Patient", id)
		if missing(err) {
			return nil, s.recordMiss(ctx, c, audit.ActionEverything, ident.PatientRef(id).String(), storageError(err))
		}
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
	keep, err := s.everythingFilter(filters)
	if err != nil {
		return nil, err
	}
	// The patient's own resources and those naming it with others
	// (joint owners), each decided below.
	owners := []ident.Owner{owner}
	joints, err := s.jointOwners(ctx, []ident.Owner{owner}, storage.MaxOwners-1)
	if err != nil {
		return nil, storageError(err)
	}
	for j, ps := range joints {
		owners = append(owners, j)
		s.rememberMembers(j, ps)
	}
	type ent struct {
		FullURL  string            `json:"fullUrl,omitempty"`
		Resource json.RawMessage   `json:"resource"`
		Search   map[string]string `json:"search"`
	}
	bev := s.event(c, audit.ActionEverything)
	bev.Patients = []string{owner.String()}
	decided(&bev, authz.Decision{Policies: policies, Purpose: purpose})
	evs := newEvents(bev)
	entries := make([]ent, 0, count)
	// The page is filled with entries the caller may see, so its size
	// and its next link do not tell that hidden ones (a sensitive or
	// consent-denied record) exist.
	var last storage.Version
	more, scanned := false, 0
scan:
	for scanned < maxEverythingScan {
		vs, err := s.store.Owned(ctx, owners, after, count+1)
		if err != nil {
			return nil, storageError(err)
		}
		for _, v := range vs {
			after = storage.VersionRef{Type: v.Type, ID: v.ID}
			scanned++
			if !keep.version(v) {
				continue
			}
			body, err := s.open(ctx, v)
			if err != nil {
				if errors.Is(err, ErrGone) {
					return nil, gone("the patient's record was erased")
				}
				if errors.Is(err, ErrTampered) {
					// One entry names the row; the page goes on. (Its labels
					// are unknown, so the outcome says nothing but the id.)
					entries = append(entries, ent{Resource: s.tamperedOutcome(v), Search: map[string]string{"mode": "outcome"}})
					continue
				}
				return nil, err
			}
			if !keep.body(v.Type, body) {
				continue
			}
			// Every entry is decided on its own labels: a sensitive
			// resource the caller may not see is left out.
			d, err := s.check(ctx, c, audit.ActionRead, v, body)
			if err != nil {
				if StatusCode(err) == statusUnavailable {
					return nil, err
				}
				continue
			}
			if len(entries) == count {
				more = true // a further visible entry: the next page starts after last
				break scan
			}
			if d.Mask {
				if body, err = authz.Redact(body); err != nil {
					continue
				}
			}
			evs.add(d, entityRef(v.Type, v.ID, v.Version), slices.Concat([]string{owner.String()}, s.eventPatients(v.Owner)))
			entries = append(entries, ent{FullURL: base + "/" + v.Type + "/" + v.ID, Resource: body, Search: map[string]string{"mode": "match"}})
			last = v
		}
		if len(vs) < count+1 {
			break
		}
	}
	resume := storage.VersionRef{Type: last.Type, ID: last.ID}
	if scanned >= maxEverythingScan && !more {
		more, resume = true, after // the scan budget ran out: continue from there
	}
	self := base + "/Patient/" + id + "/$everything"
	links := []map[string]string{{"relation": "self", "url": self}}
	if more {
		tok, err := s.sealCursor("everything", cursor{ID: id, Count: count, After: resume.Type + "/" + resume.ID, Query: filters})
		if err != nil {
			return nil, err
		}
		links = append(links, map[string]string{"relation": "next", "url": self + "?_page=" + url.QueryEscape(tok)})
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
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
	owner := ident.PatientOwner(id)
	p, err := s.store.Current(ctx, "Patient", id)
	if errors.Is(err, storage.ErrNotFound) {
		p = storage.Version{Type: "Patient", ID: id, Owner: owner}
	} else if err != nil {
		return 0, storageError(err)
	}
	if _, err := s.check(ctx, c, audit.ActionErase, p, nil); err != nil {
		return 0, s.recordDenial(ctx, err)
	}
	// The joint keys naming the patient are shredded with its own; their
	// cached copies go too. They are found from authenticated data: the
	// joint owners whose recorded patients hash to their name, and, for
	// one whose rows were altered, the patients a stored version of it
	// names (CheckJointOwners). A live joint owner whose patients cannot
	// be told fails the erasure closed: it might name this patient.
	joints, judged := map[ident.Owner]bool{}, map[ident.Owner]bool{}
	var unknown []ident.Owner
	err = s.CheckJointOwners(ctx, func(j JointOwnerCheck) error {
		judged[j.Owner] = true
		switch {
		case !j.HasKey || j.Shredded:
		case j.Patients == nil:
			unknown = append(unknown, j.Owner)
		case slices.Contains(j.Patients, owner):
			joints[j.Owner] = true
		}
		if j.Problem != "" && s.logger != nil {
			s.logger.Error("the patients recorded for a joint owner do not match its name; run phivault verify",
				slog.String("owner", j.Owner.String()), slog.String("problem", j.Problem))
		}
		return nil
	})
	if err != nil {
		return 0, storageError(err)
	}
	if len(unknown) > 0 {
		return 0, jointTampered(unknown[0])
	}
	var n int64
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Key(ctx, owner)
		if err != nil {
			return err
		}
		if rec.Shredded {
			return gone("this patient's record was already erased")
		}
		// The patient's key goes first: a write that creates a joint key
		// naming the patient reads (and, on PostgreSQL, locks) the
		// patient's key record in its transaction, so it has committed
		// by now (and its joint owner is listed below) or it will find
		// the record shredded.
		if n, err = tx.ShredOwner(ctx, owner); err != nil {
			return err
		}
		// Joint owners created since the check: their rows are checked
		// in the transaction (the others were judged above).
		listed, err := tx.JointOwnersOf(ctx, owner)
		if err != nil {
			return err
		}
		for _, j := range listed {
			if judged[j] {
				continue
			}
			m, err := tx.JointMembers(ctx, j)
			if err != nil {
				return err
			}
			slices.Sort(m)
			ok, err := s.checkMembers(j, m)
			if err != nil {
				return err
			}
			if !ok {
				return jointTampered(j)
			}
			joints[j] = true
		}
		shredded := slices.Sorted(maps.Keys(joints))
		for _, j := range shredded {
			k, err := tx.ShredOwner(ctx, j)
			if err != nil {
				return err
			}
			n += k
		}
		// The ledger: the patient's key and every joint key naming it
		// were destroyed, their live resources marked deleted (events of
		// at most audit.MaxCommitsPerEvent commitments).
		commits := []audit.Commit{eraseCommit(owner)}
		for _, j := range shredded {
			commits = append(commits, eraseCommit(j))
		}
		for len(commits) > 0 {
			k := min(len(commits), audit.MaxCommitsPerEvent)
			ev := s.event(c, audit.ActionErase)
			ev.Patients = []string{owner.String()}
			ev.Ledger = commits[:k]
			commits = commits[k:]
			r, err := s.log.Seal(ev)
			if err != nil {
				return unavailable(err)
			}
			if err := appendAudit(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("no such patient")
	}
	if err != nil {
		return 0, storageError(err)
	}
	s.forgetKey(owner)
	for j := range joints {
		s.forgetKey(j)
		s.changed("", j)
	}
	s.changed("Patient", owner)
	s.erased(owner)
	return n, nil
}
