package ownlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
)

// Source reads stored records without a decision: the authorizer's
// privileged read path (record.AuthzSource implements it), which the
// composition root hands to the loader. Errors wrap the storage
// sentinels.
type Source interface {
	// OwnedOfType returns up to limit current resources of typ owned by
	// owner ("Patient/<id>", or "org" for the organisation's own).
	OwnedOfType(ctx context.Context, owner, typ string, limit int) ([]authz.Found, error)
	// Resource returns the current version of typ/id; found is false
	// when there is none (or it is gone).
	Resource(ctx context.Context, typ, id string) (f authz.Found, found bool, err error)
}

// Users finds accounts (identity.Directory implements it).
type Users interface {
	ByID(ctx context.Context, id string) (identity.User, error)
}

// Grants lists a user's break-the-glass grants (authz.GrantStore
// implements it); nil: grants are known only from the events' purpose.
type Grants interface {
	ActiveGrants(ctx context.Context, userID string, now time.Time) ([]authz.Grant, error)
}

// Loader bounds and defaults.
const (
	// DefaultMaxPatients bounds the patients kept in the directory: a
	// day of a 500-bed hospital touches a few thousand patients; past
	// the bound those loaded first are dropped (and reloaded if
	// met again), so memory stays bounded on any log.
	DefaultMaxPatients = 20000
	// DefaultMaxAccounts bounds the cached accounts the same way.
	DefaultMaxAccounts = 20000
	// DefaultStaffTTL is how long the workforce directory (every
	// Practitioner, PractitionerRole and Organization) is reused before
	// it is read again: rosters and departments change by the day.
	DefaultStaffTTL = 10 * time.Minute
	// maxStaff bounds the resources of one workforce type read at once.
	maxStaff = 100000
	// maxRelations bounds the resources of one type read for one
	// patient (a chart with more encounters explains with the first).
	maxRelations = 2000
)

// LoaderOptions configure a [Loader]. Source and Users are required.
type LoaderOptions struct {
	Source      Source
	Users       Users
	Grants      Grants
	MaxPatients int              // DefaultMaxPatients if 0
	MaxAccounts int              // DefaultMaxAccounts if 0
	StaffTTL    time.Duration    // DefaultStaffTTL if 0
	Now         func() time.Time // time.Now if nil
}

// Loader builds a [monitor.Directory] from phivault's own records,
// incrementally: the workforce (Practitioners, their roles and the
// departments) as a whole, refreshed every StaffTTL; each patient and
// their care relationships when an event names them, reloaded when an
// event is later than their last load (an encounter opened just before
// an access explains it). It is driven by one goroutine (the
// follower's); the directory it returns must be read by that goroutine
// only.
type Loader struct {
	o   LoaderOptions
	dir *monitor.Directory

	staffAt time.Time
	roleOf  map[string]string // "PractitionerRole/<id>" -> "Practitioner/<id>"

	accounts map[string]account // account id -> what it is
	accOrder []string

	patients map[string]time.Time // "Patient/<id>" -> loaded at
	patOrder []string
	selfOf   map[string][]string           // patient -> "User/<id>" of the accounts that are theirs
	grantsOf map[string][]monitor.Relation // patient -> break-the-glass grants seen
}

type account struct {
	fhirUser string
	at       time.Time
}

// NewLoader validates o and returns an empty loader.
func NewLoader(o LoaderOptions) (*Loader, error) {
	if o.Source == nil || o.Users == nil {
		return nil, errors.New("monitor loader: source and users are required")
	}
	if o.MaxPatients <= 0 {
		o.MaxPatients = DefaultMaxPatients
	}
	if o.MaxAccounts <= 0 {
		o.MaxAccounts = DefaultMaxAccounts
	}
	if o.StaffTTL <= 0 {
		o.StaffTTL = DefaultStaffTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Loader{o: o, dir: monitor.NewDirectory(), roleOf: map[string]string{}, accounts: map[string]account{},
		patients: map[string]time.Time{}, selfOf: map[string][]string{}, grantsOf: map[string][]monitor.Relation{}}, nil
}

// Directory returns the directory the loader fills (the same value for
// the loader's life: an engine keeps it).
func (l *Loader) Directory() *monitor.Directory { return l.dir }

// Account implements [Accounts] from what Prepare loaded.
func (l *Loader) Account(id string) string { return l.accounts[id].fhirUser }

// Prepare loads what the events need: the workforce when it is older
// than StaffTTL, every account that acted, and every patient named
// (again when an event is later than the patient's last load). Call it
// before converting and adding the events to the engine.
func (l *Loader) Prepare(ctx context.Context, evs []audit.Event) error {
	now := l.o.Now()
	if l.staffAt.IsZero() || now.Sub(l.staffAt) >= l.o.StaffTTL {
		if err := l.loadStaff(ctx); err != nil {
			return err
		}
		l.staffAt = now
	}
	for _, ev := range evs {
		id := ev.Agent.User
		if id == "" || id == "unknown" {
			continue
		}
		if a, ok := l.accounts[id]; ok && now.Sub(a.at) < l.o.StaffTTL {
			continue
		}
		if err := l.loadAccount(ctx, id, now); err != nil {
			return err
		}
	}
	latest := map[string]time.Time{}
	for _, ev := range evs {
		ps := ev.Patients
		if len(ps) == 0 {
			if p := askedPatient(ev.Entities); p != "" && ev.Outcome != audit.OutcomeSuccess {
				ps = []string{p}
			}
		}
		for _, p := range ps {
			if ev.Time.After(latest[p]) {
				latest[p] = ev.Time
			}
		}
	}
	for p, t := range latest {
		if at, ok := l.patients[p]; ok && at.After(t) {
			continue
		}
		if err := l.loadPatient(ctx, p, now); err != nil {
			return err
		}
	}
	return nil
}

// loadStaff reads every Organization, Practitioner and PractitionerRole.
func (l *Loader) loadStaff(ctx context.Context) error {
	orgs, err := l.o.Source.OwnedOfType(ctx, string(ident.Org), "Organization", maxStaff)
	if err != nil {
		return fmt.Errorf("monitor loader: reading organizations: %w", err)
	}
	deps := map[string]monitor.Department{}
	for _, f := range orgs {
		if d, err := Organization(f.ID, f.JSON); err == nil {
			deps[d.Ref] = d
		}
	}
	prs, err := l.o.Source.OwnedOfType(ctx, string(ident.Org), "Practitioner", maxStaff)
	if err != nil {
		return fmt.Errorf("monitor loader: reading practitioners: %w", err)
	}
	people := map[string]*monitor.Person{}
	for _, f := range prs {
		if p, err := Practitioner(f.ID, f.JSON); err == nil {
			people[p.Ref] = p
		}
	}
	roles, err := l.o.Source.OwnedOfType(ctx, string(ident.Org), "PractitionerRole", maxStaff)
	if err != nil {
		return fmt.Errorf("monitor loader: reading practitioner roles: %w", err)
	}
	roleOf := map[string]string{}
	for _, f := range roles {
		who, r, active, err := PractitionerRole(f.ID, f.JSON)
		if err != nil || who == "" {
			continue
		}
		roleOf[r.Ref] = who
		if p := people[who]; p != nil && active {
			p.Roles = append(p.Roles, r)
		}
	}
	l.dir.Departments, l.dir.Practitioners, l.roleOf = deps, people, roleOf
	return nil
}

// loadAccount reads one account: a workforce account bound to a
// Practitioner maps to it; a patient's account is their own record's.
func (l *Loader) loadAccount(ctx context.Context, id string, now time.Time) error {
	u, err := l.o.Users.ByID(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		l.putAccount(id, account{at: now}) // a token or client, not an account
		return nil
	}
	if err != nil {
		return fmt.Errorf("monitor loader: reading an account: %w", err)
	}
	l.putAccount(id, account{fhirUser: u.FHIRUser, at: now})
	r, ok := ident.ParseRef(u.FHIRUser)
	switch {
	case ok && r.Type == "Practitioner":
		l.dir.Accounts["User/"+id] = r.String()
	case ok && r.IsPatient():
		p := r.String()
		if !slices.Contains(l.selfOf[p], "User/"+id) {
			l.selfOf[p] = append(l.selfOf[p], "User/"+id)
			delete(l.patients, p) // reload with the relation
		}
	}
	if l.o.Grants == nil || !ok || r.Type != "Practitioner" {
		return nil
	}
	gs, err := l.o.Grants.ActiveGrants(ctx, id, now)
	if err != nil {
		return fmt.Errorf("monitor loader: reading break-the-glass grants: %w", err)
	}
	for _, g := range gs {
		rel := monitor.Relation{Kind: monitor.RelBreakGlass, Ref: "Grant/" + g.ID, Participants: []string{r.String(), "User/" + id}, Start: g.Created, End: g.Expires}
		if !containsRel(l.grantsOf[g.Patient], rel.Ref) {
			l.grantsOf[g.Patient] = append(l.grantsOf[g.Patient], rel)
			if rels, ok := l.dir.Relations[g.Patient]; ok {
				l.dir.Relations[g.Patient] = append(rels, rel)
			}
		}
	}
	return nil
}

func (l *Loader) putAccount(id string, a account) {
	if _, ok := l.accounts[id]; !ok {
		l.accOrder = append(l.accOrder, id)
		for len(l.accOrder) > l.o.MaxAccounts {
			old := l.accOrder[0]
			l.accOrder = l.accOrder[1:]
			if r, ok := ident.ParseRef(l.accounts[old].fhirUser); ok && r.IsPatient() {
				l.selfOf[r.String()] = slices.DeleteFunc(l.selfOf[r.String()], func(s string) bool { return s == "User/"+old })
			}
			delete(l.accounts, old)
			delete(l.dir.Accounts, "User/"+old)
		}
	}
	l.accounts[id] = a
}

// loadPatient reads patient p and their care relationships.
func (l *Loader) loadPatient(ctx context.Context, p string, now time.Time) error {
	r, ok := ident.ParseRef(p)
	if !ok || !r.IsPatient() {
		return nil
	}
	f, found, err := l.o.Source.Resource(ctx, "Patient", r.ID)
	if err != nil {
		return fmt.Errorf("monitor loader: reading a patient: %w", err)
	}
	if _, seen := l.patients[p]; !seen {
		l.patOrder = append(l.patOrder, p)
		l.evict()
	}
	l.patients[p] = now
	if !found {
		delete(l.dir.Patients, p) // a miss (enumeration) or an erased patient
		delete(l.dir.Relations, p)
		return nil
	}
	info, err := Patient(r.ID, f.JSON)
	if err != nil || f.Tampered {
		delete(l.dir.Patients, p)
		delete(l.dir.Relations, p)
		return nil //nolint:nilerr // an undecodable or tampered record explains nothing; the access stays a candidate
	}
	var rels []monitor.Relation
	for _, typ := range RelationTypes {
		fs, err := l.o.Source.OwnedOfType(ctx, p, typ, maxRelations)
		if err != nil {
			return fmt.Errorf("monitor loader: reading a patient's %s resources: %w", typ, err)
		}
		for _, f := range fs {
			if f.Tampered {
				continue
			}
			rel, ok, err := Relation(typ, f.ID, f.JSON)
			if err != nil || !ok {
				continue
			}
			for _, who := range rel.Participants {
				if pr := l.roleOf[who]; pr != "" {
					rel.Participants = appendNew(rel.Participants, pr)
				}
			}
			rels = append(rels, rel)
		}
	}
	if self := l.selfOf[p]; len(self) > 0 {
		rels = append(rels, monitor.Relation{Kind: monitor.RelSelf, Ref: p, Participants: append([]string(nil), self...)})
	}
	rels = append(rels, l.grantsOf[p]...)
	l.dir.Patients[p] = info
	l.dir.Relations[p] = rels
	return nil
}

// evict drops the patients loaded first past the bound.
func (l *Loader) evict() {
	for len(l.patOrder) > l.o.MaxPatients {
		old := l.patOrder[0]
		l.patOrder = l.patOrder[1:]
		delete(l.patients, old)
		delete(l.dir.Patients, old)
		delete(l.dir.Relations, old)
		delete(l.grantsOf, old)
	}
}

func containsRel(rs []monitor.Relation, ref string) bool {
	for _, r := range rs {
		if r.Ref == ref {
			return true
		}
	}
	return false
}
