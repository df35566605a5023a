package chart

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// The worklist is the clinician's start page (GET /patients, above the
// search): "My patients" (the patients of the active CareTeams that
// name the viewer's Practitioner), "Current encounters" (the
// encounters in progress the viewer takes part in) and "Recently
// opened" (the charts the viewer opened last). Everything is read
// through the record service as the viewer (each search decided and
// audited), and patients are shown by name through one Patient search
// by _id, so a patient the viewer can no longer reach drops out. No
// patient data is in a URL: rows link to /patients/{id}.

// Worklist bounds (STYLE rule 24).
const (
	worklistCareTeams  = 100 // care teams read for "My patients"
	worklistEncounters = 50  // current encounters
	// maxRecent is how many recently opened charts are kept per user.
	maxRecent = 10
	// maxRecentUsers bounds the recent lists held in memory: at the cap
	// the list of the user who opened a chart least recently is dropped.
	maxRecentUsers = 10000
)

// currentEncounter are the Encounter statuses of a visit going on.
const currentEncounter = "arrived,triaged,in-progress,onleave"

type worklistView struct {
	Linked     bool // the account is linked to a Practitioner
	MyPatients []patientRow
	Encounters []encounterRow
	Recent     []patientRow
}

type encounterRow struct {
	patientRow
	What, Since, Status string
}

// worklist reads the viewer's worklist.
func (u *UI) worklist(ctx context.Context, c record.Caller, v *site.Viewer) (worklistView, error) {
	wl := worklistView{Linked: strings.HasPrefix(v.FHIRUser, "Practitioner/")}
	var teamPatients []string
	teamOf := map[string]string{}
	var encs []chartview.Obj
	if wl.Linked {
		teams, err := u.searchAll(ctx, c, "CareTeam", url.Values{"participant": {v.FHIRUser}, "status": {"active"}, "_count": {strconv.Itoa(worklistCareTeams)}})
		if err != nil {
			return wl, err
		}
		for _, t := range teams {
			pid, ok := patientID(t.Obj("subject").Str("reference"))
			if !ok {
				continue
			}
			if _, seen := teamOf[pid]; !seen {
				teamPatients = append(teamPatients, pid)
				teamOf[pid] = t.Str("name")
			}
		}
		if encs, err = u.searchAll(ctx, c, "Encounter", url.Values{"participant": {v.FHIRUser}, "status": {currentEncounter},
			"_sort": {"-date"}, "_count": {strconv.Itoa(worklistEncounters)}}); err != nil {
			return wl, err
		}
	}
	recent := u.recent.list(v.P.ID)
	ids := slices.Clone(teamPatients)
	for _, e := range encs {
		if pid, ok := patientID(e.Obj("subject").Str("reference")); ok {
			ids = append(ids, pid)
		}
	}
	ids = append(ids, recent...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	people, err := u.patientsByID(ctx, c, ids)
	if err != nil {
		return wl, err
	}
	for _, pid := range teamPatients {
		if p, ok := people[pid]; ok {
			p.Detail = teamOf[pid]
			wl.MyPatients = append(wl.MyPatients, p)
		}
	}
	slices.SortStableFunc(wl.MyPatients, func(a, b patientRow) int { return strings.Compare(a.Name, b.Name) })
	for _, e := range encs {
		pid, _ := patientID(e.Obj("subject").Str("reference"))
		p, ok := people[pid]
		if !ok {
			continue
		}
		what := ""
		if ts := e.List("type"); len(ts) > 0 {
			what = chartview.Concept(ts[0])
		}
		if what == "" {
			what = e.Obj("class").Str("display")
		}
		if what == "" {
			what = e.Obj("class").Str("code")
		}
		wl.Encounters = append(wl.Encounters, encounterRow{patientRow: p, What: what, Since: chartview.ShortDate(e.Obj("period").Str("start")), Status: e.Str("status")})
	}
	for _, pid := range recent {
		if p, ok := people[pid]; ok {
			wl.Recent = append(wl.Recent, p)
		}
	}
	return wl, nil
}

// searchAll runs one bounded search as c and returns its matches.
func (u *UI) searchAll(ctx context.Context, c record.Caller, typ string, vals url.Values) ([]chartview.Obj, error) {
	page, err := u.rec.Search(ctx, c, typ, vals, chartview.SearchOptions())
	if err != nil {
		return nil, err
	}
	return chartview.BundleResources(page.Bundle)
}

// patientsByID reads the Patients ids (one search by _id) as c: those
// c may see, by id.
func (u *UI) patientsByID(ctx context.Context, c record.Caller, ids []string) (map[string]patientRow, error) {
	out := map[string]patientRow{}
	if len(ids) == 0 {
		return out, nil
	}
	found, err := u.searchAll(ctx, c, "Patient", url.Values{"_id": {strings.Join(ids, ",")}, "_count": {strconv.Itoa(len(ids))}})
	if err != nil {
		return nil, err
	}
	for _, p := range found {
		out[p.Str("id")] = patientRow{ID: p.Str("id"), Name: chartview.HumanName(p), BirthDate: p.Str("birthDate"), Gender: p.Str("gender"), MRN: chartview.MRN(p)}
	}
	return out, nil
}

// patientID is the id of a literal "Patient/<id>" reference.
func patientID(ref string) (string, bool) {
	id, ok := strings.CutPrefix(ref, ident.PatientPrefix)
	return id, ok && record.ValidID(id)
}

// recentStore holds, per user, the patients whose charts they opened
// last (ids only, newest first), in memory: a restart or another
// process of a fleet starts the list afresh. Safe for concurrent use.
type recentStore struct {
	mu     sync.Mutex
	tick   uint64
	byUser map[string]recentList
}

type recentList struct {
	ids  []string
	used uint64
}

func newRecentStore() *recentStore { return &recentStore{byUser: map[string]recentList{}} }

// add puts patient id first in user's list.
func (s *recentStore) add(user, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	l, ok := s.byUser[user]
	if !ok && len(s.byUser) >= maxRecentUsers {
		var oldest string
		for k, v := range s.byUser {
			if oldest == "" || v.used < s.byUser[oldest].used {
				oldest = k
			}
		}
		delete(s.byUser, oldest)
	}
	l.ids = slices.DeleteFunc(l.ids, func(x string) bool { return x == id })
	l.ids = slices.Insert(l.ids, 0, id)
	if len(l.ids) > maxRecent {
		l.ids = l.ids[:maxRecent]
	}
	l.used = s.tick
	s.byUser[user] = l
}

// list returns user's recent patient ids, newest first.
func (s *recentStore) list(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byUser[user].ids)
}
