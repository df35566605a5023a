package chart

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Patient search keeps search terms (PHI: names, identifiers, birth
// dates) out of URLs with POST-redirect-GET: the POST stores the terms
// under a random id bound to the session, and the results page is
// /patients/search/{id}. The id is opaque and useless to another
// session; the terms live in memory for searchTTL and are never logged.
//
// In a fleet the GET may reach another process, which does not know the
// id: the page then asks to search again (see ADR 0013).

const (
	// searchTTL is how long a stored search can be reopened (the back
	// button, a reload): a clinic visit, and no longer than the idle
	// timeout that would end the session anyway.
	searchTTL = 15 * time.Minute
	// maxSearches bounds the store (STYLE rule 24): at the cap the entry
	// closest to expiry is dropped.
	maxSearches = 10000
	// maxTermLen bounds each search field, in bytes.
	maxTermLen = 100
	// searchResults is the page size of patient results.
	searchResults = 50
)

type patientQuery struct {
	Name, Identifier, BirthDate string
}

func (q patientQuery) empty() bool { return q.Name == "" && q.Identifier == "" && q.BirthDate == "" }

var birthDatePattern = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2})?)?$`)

// validate checks the fields and returns a plain message, or "".
func (q patientQuery) validate() string {
	switch {
	case q.empty():
		return "Enter a name, an identifier or a birth date."
	case len(q.Name) > maxTermLen || len(q.Identifier) > maxTermLen:
		return "Names and identifiers are at most 100 characters."
	case !utf8.ValidString(q.Name) || !utf8.ValidString(q.Identifier):
		return "The search contains characters that are not text."
	case q.BirthDate != "" && !birthDatePattern.MatchString(q.BirthDate):
		return "Enter the birth date as YYYY-MM-DD (or YYYY, or YYYY-MM)."
	}
	return ""
}

// values is the FHIR search for q.
func (q patientQuery) values() url.Values {
	v := url.Values{"_count": {strconv.Itoa(searchResults)}}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.Identifier != "" {
		v.Set("identifier", q.Identifier)
	}
	if q.BirthDate != "" {
		v.Set("birthdate", q.BirthDate)
	}
	return v
}

type savedSearch struct {
	session string
	q       patientQuery
	expires time.Time
}

// searchStore holds recent searches by opaque id. Safe for concurrent use.
type searchStore struct {
	now  func() time.Time
	mu   sync.Mutex
	byID map[string]savedSearch
}

func newSearchStore(now func() time.Time) *searchStore {
	return &searchStore{now: now, byID: make(map[string]savedSearch)}
}

// put stores q for sessionID and returns its id (128 random bits, hex).
func (s *searchStore) put(rd io.Reader, sessionID string, q patientQuery) (string, error) {
	if rd == nil {
		rd = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSearches {
		var oldest string
		var at time.Time
		for k, v := range s.byID {
			if now.After(v.expires) {
				delete(s.byID, k)
				continue
			}
			if oldest == "" || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		if len(s.byID) >= maxSearches {
			delete(s.byID, oldest)
		}
	}
	s.byID[id] = savedSearch{session: sessionID, q: q, expires: now.Add(searchTTL)}
	return id, nil
}

// get returns the search id of sessionID, if it is live.
func (s *searchStore) get(id, sessionID string) (patientQuery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	if !ok || v.session != sessionID || s.now().After(v.expires) {
		return patientQuery{}, false
	}
	return v.q, true
}

// dropSession forgets every search of sessionID (at sign-out).
func (s *searchStore) dropSession(sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID {
		if v.session == sessionID {
			delete(s.byID, k)
		}
	}
}

type searchView struct {
	Query   patientQuery
	Error   string
	Done    bool // a search ran (show results, even none)
	Results []patientRow
	More    bool
	// Elsewhere are the patients the search matches outside the
	// viewer's relationships (record.Service.Locate): name and birth
	// date only, each with the way to break the glass.
	Elsewhere     []patientRow
	ElsewhereMore bool
	// LocateLimited: the viewer made too many look-ups outside their
	// care in a short time (locate_limit.go); none was made.
	LocateLimited bool
	// Worklist is the start page's (GET /patients), nil on results.
	Worklist *worklistView
}

type patientRow struct {
	ID, Name, BirthDate, Gender, MRN string
	Detail                           string // the care team, on the worklist
}

func (u *UI) searchForm(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	wl, err := u.worklist(r.Context(), site.Caller(r, v), v)
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "search", site.PageData{Title: "Find a patient", Viewer: v, Nav: "patients", Data: searchView{Worklist: &wl}})
	return nil
}

func (u *UI) searchSubmit(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	q := patientQuery{
		Name:       strings.TrimSpace(r.PostForm.Get("name")),
		Identifier: strings.TrimSpace(r.PostForm.Get("identifier")),
		BirthDate:  strings.TrimSpace(r.PostForm.Get("birthdate")),
	}
	if msg := q.validate(); msg != "" {
		u.site.Render(w, r, http.StatusBadRequest, "search", site.PageData{Title: "Find a patient", Viewer: v, Nav: "patients", Data: searchView{Query: q, Error: msg}})
		return nil
	}
	id, err := u.searches.put(u.rand, v.P.SessionID, q)
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/patients/search/"+id)
}

func (u *UI) searchResults(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	q, ok := u.searches.get(r.PathValue("sid"), v.P.SessionID)
	if !ok {
		u.site.Render(w, r, http.StatusNotFound, "search", site.PageData{Title: "Find a patient", Viewer: v, Nav: "patients",
			Data: searchView{Error: "This search has expired. Search again."}})
		return nil
	}
	page, err := u.rec.Search(r.Context(), site.Caller(r, v), "Patient", q.values(), chartview.SearchOptions())
	if err != nil {
		if chartview.Denied(err) {
			return site.PageErr(http.StatusForbidden, "Search not allowed", "Your access policy does not allow this search.", err)
		}
		return searchFailure(err)
	}
	rows, more, err := patientRows(page.Bundle)
	if err != nil {
		return err
	}
	sv := searchView{Query: q, Done: true, Results: rows, More: more}
	if sv.Elsewhere, sv.ElsewhereMore, sv.LocateLimited, err = u.locate(r, v, q, rows); err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "search", site.PageData{Title: "Find a patient", Viewer: v, Nav: "patients", Data: sv})
	return nil
}

// patientRows reads the Patients of a searchset Bundle.
func patientRows(bundle []byte) ([]patientRow, bool, error) {
	var b struct {
		Link  []struct{ Relation string } `json:"link"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, false, err
	}
	rows := make([]patientRow, 0, len(b.Entry))
	for _, e := range b.Entry {
		var p chartview.Obj
		if err := json.Unmarshal(e.Resource, &p); err != nil {
			return nil, false, err
		}
		rows = append(rows, patientRow{ID: p.Str("id"), Name: chartview.HumanName(p), BirthDate: p.Str("birthDate"), Gender: p.Str("gender"), MRN: chartview.MRN(p)})
	}
	more := false
	for _, l := range b.Link {
		more = more || l.Relation == "next"
	}
	return rows, more, nil
}
