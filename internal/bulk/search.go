package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
)

// run is one job's pass over the data.
type run struct {
	s         *Service
	j         Job
	req       Request
	caller    record.Caller
	list      record.Caller // lists a Patient-level export's cohort
	w         *writer
	lastRenew time.Time
	nPatients int
	// phase is what the run is doing (no PHI: a resource type and
	// counts), and patientsTotal the cohort's size when known: the
	// job's progress, recorded with the lease renewals.
	phase         string
	patientsTotal int
}

// page is the part of a searchset Bundle an export reads.
type page struct {
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// searchFn runs one page of a search with vals.
type searchFn func(ctx context.Context, vals url.Values) (record.Page, error)

// queries are the searches of typ: one per _typeFilter query (a
// resource matching several is written once), or one without filter;
// each with _since as _lastUpdated=gt.
func (r *run) queries(typ string) []url.Values {
	var out []url.Values
	fs := r.req.Filters[typ]
	if len(fs) == 0 {
		fs = []string{""}
	}
	for _, f := range fs {
		vals, _ := url.ParseQuery(f)
		if vals == nil {
			vals = url.Values{}
		}
		if !r.req.Since.IsZero() {
			vals.Add("_lastUpdated", "gt"+r.req.Since.UTC().Format(time.RFC3339Nano))
		}
		vals.Set("_count", fmt.Sprint(r.s.o.PageSize))
		out = append(out, vals)
	}
	return out
}

// each runs search fn over every page, calling emit with each match's
// type, id and body. seen (when not nil) drops matches already written.
func (r *run) each(ctx context.Context, fn searchFn, vals url.Values, emit func(typ, id string, body []byte) error) error {
	for {
		pg, err := fn(ctx, vals)
		if err != nil {
			return err
		}
		var p page
		if err := json.Unmarshal(pg.Bundle, &p); err != nil {
			return fmt.Errorf("reading a search page: %w", err)
		}
		for _, e := range p.Entry {
			if e.Search.Mode == "outcome" {
				r.w.skip(reasonUnreadable) // a stored row that failed its integrity check
				continue
			}
			if e.Search.Mode != "match" {
				continue
			}
			var head struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			}
			if err := json.Unmarshal(e.Resource, &head); err != nil || head.ResourceType == "" {
				r.w.skip(reasonUnreadable)
				continue
			}
			if err := emit(head.ResourceType, head.ID, e.Resource); err != nil {
				return err
			}
		}
		if err := r.renew(ctx); err != nil {
			return err
		}
		next := ""
		for _, l := range p.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if next == "" {
			return nil
		}
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("_page") == "" {
			return errors.New("a search page's next link has no cursor")
		}
		vals = url.Values{"_page": {u.Query().Get("_page")}}
	}
}

// renew extends the job's lease and records progress, at most every
// quarter lease.
func (r *run) renew(ctx context.Context) error {
	now := r.s.o.Now()
	if now.Sub(r.lastRenew) < r.s.o.Lease/4 {
		return nil
	}
	return r.renewNow(ctx)
}

// renewNow extends the job's lease and records progress at once.
func (r *run) renewNow(ctx context.Context) error {
	now := r.s.o.Now()
	r.lastRenew = now
	return r.s.o.Store.RenewLease(ctx, r.j.ID, r.s.o.Holder, now.Add(r.s.o.Lease), r.progress())
}

// setPhase records a new phase of the run (with a lease renewal) when it
// differs from the current one.
func (r *run) setPhase(ctx context.Context, phase string) error {
	if phase == r.phase {
		return nil
	}
	r.phase = phase
	return r.renewNow(ctx)
}

// progress is the job's progress as its client sees it (X-Progress):
// e.g. "exporting Observation (type 2 of 5): 12,345 resources, 40 of
// 120 patients". Counts only: nothing that names a patient.
func (r *run) progress() string {
	prog := r.phase + ": " + thousands(r.w.exported) + " resources"
	if r.w.nDeletedTotal > 0 {
		prog += ", " + thousands(r.w.nDeletedTotal) + " deleted"
	}
	switch {
	case r.patientsTotal > 0:
		prog += ", " + thousands(r.nPatients) + " of " + thousands(r.patientsTotal) + " patients"
	case r.nPatients > 0:
		prog += ", " + thousands(r.nPatients) + " patients"
	}
	return prog
}

// thousands formats n with comma separators (12,345).
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// searchErr sorts a search's error: unavailability and a lost lease end
// the run; anything else is counted (without identifiers) and skipped.
func (r *run) searchErr(err error, reason string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrLeaseLost) || errors.Is(err, record.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	r.w.skip(reason)
	return nil
}

// system exports every resource of types the client may receive.
func (r *run) system(ctx context.Context, types []string) error {
	for i, typ := range types {
		if err := r.setPhase(ctx, fmt.Sprintf("exporting %s (type %d of %d)", typ, i+1, len(types))); err != nil {
			return err
		}
		fn := func(ctx context.Context, vals url.Values) (record.Page, error) {
			return r.s.o.Record.Search(ctx, r.caller, typ, vals, record.SearchOptions{BaseURL: r.s.o.BaseURL})
		}
		qs := r.queries(typ)
		var seen map[string]bool
		if len(qs) > 1 {
			seen = map[string]bool{}
		}
		for _, vals := range qs {
			err := r.each(ctx, fn, vals, func(t, id string, body []byte) error {
				if seen != nil {
					if seen[id] {
						return nil
					}
					seen[id] = true
				}
				return r.w.add(ctx, t, body)
			})
			if err := r.searchErr(err, reasonSearchRefused); err != nil {
				return err
			}
		}
	}
	return nil
}

// patients exports the compartments of the patient parameter's
// patients, or of every patient the client may receive.
func (r *run) patients(ctx context.Context, types []string) error {
	if err := r.setPhase(ctx, compartmentPhase(types)); err != nil {
		return err
	}
	if len(r.req.Patients) > 0 {
		r.patientsTotal = len(r.req.Patients)
		for _, id := range r.req.Patients {
			if err := r.compartment(ctx, id, types); err != nil {
				return err
			}
		}
		return nil
	}
	// Every patient the export may disclose: a search of Patient as the
	// client, narrowed like every other search of the export (a patient
	// whose consent refuses is never listed).
	var ids []string
	list := func(ctx context.Context, vals url.Values) (record.Page, error) {
		return r.s.o.Record.Search(ctx, r.list, "Patient", vals, record.SearchOptions{BaseURL: r.s.o.BaseURL})
	}
	vals := url.Values{"_count": {fmt.Sprint(r.s.o.PageSize)}, "_elements": {"id"}}
	flushIDs := func(ctx context.Context) error {
		for _, id := range ids {
			if err := r.compartment(ctx, id, types); err != nil {
				return err
			}
		}
		ids = ids[:0]
		return nil
	}
	err := r.each(ctx, list, vals, func(_, id string, _ []byte) error {
		ids = append(ids, id)
		if len(ids) >= r.s.o.PageSize {
			return flushIDs(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flushIDs(ctx)
}

// compartmentPhase is the phase of a Patient or Group level export.
func compartmentPhase(types []string) string {
	if len(types) == 1 {
		return "exporting " + types[0] + " of patient compartments"
	}
	return fmt.Sprintf("exporting %d resource types of patient compartments", len(types))
}

// compartment exports one patient's compartment resources of types.
func (r *run) compartment(ctx context.Context, id string, types []string) error {
	defer func() { r.nPatients++ }()
	for _, typ := range types {
		fn := func(ctx context.Context, vals url.Values) (record.Page, error) {
			return r.s.o.Record.CompartmentSearch(ctx, r.caller, id, typ, vals, record.SearchOptions{BaseURL: r.s.o.BaseURL})
		}
		qs := r.queries(typ)
		var seen map[string]bool
		if len(qs) > 1 {
			seen = map[string]bool{}
		}
		for _, vals := range qs {
			err := r.each(ctx, fn, vals, func(t, rid string, body []byte) error {
				if seen != nil {
					if seen[rid] {
						return nil
					}
					seen[rid] = true
				}
				// A resource naming several patients is in each one's
				// compartment: written once per type and export.
				if r.w.written(t, rid) {
					return nil
				}
				return r.w.add(ctx, t, body)
			})
			if err := r.searchErr(err, reasonPatientUndecided); err != nil {
				return err
			}
		}
	}
	return nil
}

// group exports the compartments of the Group's active Patient members.
// The Group is read as the client (an ordinary read, audited as one);
// each member's compartment is then searched as a disclosure, so a
// member the client may not receive contributes nothing.
func (r *run) group(ctx context.Context, types []string, p authn.Principal) error {
	rc := record.Caller{Agent: r.caller.Agent, RequestID: r.caller.RequestID, Guard: r.s.o.Guards(authn.Principal{
		Kind: p.Kind, ID: p.ID, Roles: p.Roles, Scopes: p.Scopes})}
	st, err := r.s.o.Record.Read(ctx, rc, "Group", r.req.Group)
	if err != nil {
		if errors.Is(err, record.ErrUnavailable) {
			return err
		}
		r.w.skip(reasonGroupUnreadable)
		return nil
	}
	members, skipped, err := groupMembers(st.JSON, r.s.o.Now())
	if err != nil {
		r.w.skip(reasonGroupUnreadable)
		return nil
	}
	for range skipped {
		r.w.skip(reasonMemberInactive)
	}
	if len(r.req.Patients) > 0 {
		// patient narrows the cohort to those of its patients that are
		// members.
		members = slices.DeleteFunc(members, func(id string) bool { return !slices.Contains(r.req.Patients, id) })
	}
	r.patientsTotal = len(members)
	if err := r.setPhase(ctx, compartmentPhase(types)); err != nil {
		return err
	}
	for _, id := range members {
		if err := r.compartment(ctx, id, types); err != nil {
			return err
		}
	}
	return nil
}

// MaxGroupMembers bounds the members of one Group export.
const MaxGroupMembers = 100000

// groupMembers returns the ids of the active Patient members of Group
// body (member.entity "Patient/<id>", not inactive, period not ended at
// now), and how many members were left out (inactive, ended, or not a
// literal Patient reference).
func groupMembers(body []byte, now time.Time) (ids []string, skipped int, err error) {
	var g struct {
		Member []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
			Inactive bool `json:"inactive"`
			Period   struct {
				Start string `json:"start"`
				End   string `json:"end"`
			} `json:"period"`
		} `json:"member"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&g); err != nil {
		return nil, 0, fmt.Errorf("reading a Group: %w", err)
	}
	if len(g.Member) > MaxGroupMembers {
		return nil, 0, errors.New("the Group has too many members")
	}
	for _, m := range g.Member {
		id, ok := strings.CutPrefix(m.Entity.Reference, ident.PatientPrefix)
		if !ok || !validID(id) || m.Inactive || ended(m.Period.End, now) || notStarted(m.Period.Start, now) {
			skipped++
			continue
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, skipped, nil
}

// ended reports whether a FHIR dateTime period end is before now; an
// end that does not parse counts as ended (fail closed).
func ended(end string, now time.Time) bool {
	if end == "" {
		return false
	}
	t, ok := parseFHIRTime(end, true)
	return !ok || t.Before(now)
}

func notStarted(start string, now time.Time) bool {
	if start == "" {
		return false
	}
	t, ok := parseFHIRTime(start, false)
	return !ok || t.After(now)
}

// parseFHIRTime parses a FHIR dateTime of any precision; end rounds a
// partial date up to the end of its period.
func parseFHIRTime(s string, end bool) (time.Time, bool) {
	for _, f := range []struct {
		layout string
		step   func(time.Time) time.Time
	}{
		{time.RFC3339Nano, func(t time.Time) time.Time { return t }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
	} {
		if t, err := time.Parse(f.layout, s); err == nil {
			if end {
				return f.step(t), true
			}
			return t, true
		}
	}
	return time.Time{}, false
}
