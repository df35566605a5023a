package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// Locating a patient (ADR 0035). A clinician who searches for a
// patient outside their relationships finds nothing with Search: the
// narrowing keeps the Patients of strangers out. Hospitals answer such
// a search with "a patient by that name exists; break the glass to open
// the chart". Locate is that answer: a Patient search decided with the
// policy action authz.Locate instead of authz.Search, through the same
// narrowing (consents, labels, VIP and employee flags, decided inside
// the query), each match decided again on its own labels, and every
// match reduced to its name and birth date before it leaves the
// service. The look-up is audited as audit.ActionLocate, naming each
// patient it told of, so the patient sees it in their access history.

// Locate limits.
const (
	// MaxLocated is the most patients one look-up tells of: a look-up
	// is for finding one patient, not for listing a population; more
	// matches ask for a birth date (Located.More).
	MaxLocated = 10
	// MinLocateName is the shortest name a look-up takes: a name search
	// matches names that start with it, and a letter or two would list
	// strangers by the page.
	MinLocateName = 3
)

// locateParams are the search parameters a look-up accepts. Identifiers
// are not among them: a look-up would confirm a value (an MRN, an SSN)
// that the caller may not see in clear on a stranger's record.
var locateParams = []string{"name", "birthdate"}

// Located is the answer to a look-up.
type Located struct {
	// Patients are the located patients reduced to id, name and birth
	// date (minimal Patient JSON), at most MaxLocated.
	Patients []Stored
	// More is set when more patients matched than MaxLocated.
	More bool
}

// ErrLocateQuery is the cause of a refused look-up: it needs a name of
// at least MinLocateName letters and accepts only name and birth date.
var ErrLocateQuery = errors.New("record: a look-up needs a name and takes only a name and a birth date")

// Locate answers which patients outside c's relationships a name
// search (name, optionally birthdate) matches, reduced to their id,
// name and birth date. It is decided with authz.Locate (the default
// policies: physicians' and nurses' sessions, for patients with no
// relationship to them, never a patient hidden by consent or carrying a
// sensitive label); a caller the policies never allow to locate gets an
// *Error of kind ErrForbidden, with its audit event recorded. A match
// it may not locate is left out exactly as a non-match. The look-up is
// audited (audit.ActionLocate) before it returns, also when it finds
// nothing. vals holding anything else than name and birthdate, or no
// name of at least MinLocateName letters, is refused (ErrInvalid
// wrapping ErrLocateQuery).
func (s *Service) Locate(ctx context.Context, c Caller, vals url.Values) (Located, error) {
	short := len(vals["name"]) == 0
	for _, n := range vals["name"] {
		short = short || utf8.RuneCountInString(strings.TrimSpace(n)) < MinLocateName
	}
	if short {
		return Located{}, failCause(ErrInvalid, "required", fmt.Sprintf("a look-up needs a name of at least %d letters", MinLocateName), ErrLocateQuery)
	}
	q := url.Values{"_count": {strconv.Itoa(MaxLocated)}}
	for k, v := range vals {
		if !slices.Contains(locateParams, k) {
			return Located{}, failCause(ErrInvalid, "not-supported", "a look-up takes a name and a birth date only", ErrLocateQuery)
		}
		q[k] = v
	}
	p, err := s.parseSearch("Patient", q, false)
	if err != nil {
		return Located{}, err
	}
	f, err := s.narrowAs(ctx, c, s.store, &p.q, audit.ActionLocate)
	if err != nil {
		return Located{}, s.recordDenial(ctx, s.denial(c, audit.ActionLocate, storage.Version{Type: "Patient"}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	if f.Nothing() {
		d := authz.Decision{Policies: f.Policies}
		return Located{}, s.recordDenial(ctx, s.denial(c, audit.ActionLocate, storage.Version{Type: "Patient"}, d, nil))
	}
	p.q.Count = MaxLocated + 1
	r, err := s.store.Search(ctx, p.q)
	if err != nil {
		return Located{}, storageError(err)
	}
	var out Located
	if len(r.Versions) > MaxLocated {
		r.Versions, out.More = r.Versions[:MaxLocated], true
	}
	base := s.event(c, audit.ActionLocate)
	base.Query = "Patient?" + strings.Join(p.params, "&")
	base.Policies = f.Policies
	evs := newEvents(base)
	for _, v := range r.Versions {
		body, err := s.open(ctx, v)
		if err != nil {
			if errors.Is(err, ErrGone) || errors.Is(err, ErrTampered) {
				continue
			}
			return Located{}, err
		}
		d, err := s.check(ctx, c, audit.ActionLocate, v, body)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && StatusCode(e) == statusUnavailable {
				return Located{}, err
			}
			continue // left out, as a non-match
		}
		reduced, err := locatedPatient(v.ID, body)
		if err != nil {
			return Located{}, err
		}
		out.Patients = append(out.Patients, Stored{Type: v.Type, ID: v.ID, Version: v.Version, LastUpdated: v.LastUpdated, JSON: reduced})
		evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return Located{}, err
	}
	return out, nil
}

// locatedPatient reduces a Patient to what a look-up tells: its id,
// names and birth date.
func locatedPatient(id string, body []byte) ([]byte, error) {
	var p struct {
		Name      json.RawMessage `json:"name,omitempty"`
		BirthDate string          `json:"birthDate,omitempty"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("reading a located patient: %w", err)
	}
	out := map[string]any{"resourceType": "Patient", "id": id}
	if len(p.Name) > 0 {
		out["name"] = p.Name
	}
	if p.BirthDate != "" {
		out["birthDate"] = p.BirthDate
	}
	return json.Marshal(out)
}
