package authz

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// memSource is a hand-written in-memory Source: resources by type, and
// an error to fail with.
type memSource struct {
	res    []Found
	joints map[string][]string // joint owner -> its patients
	err    error
	reads  int
}

func (m *memSource) Referencing(_ context.Context, typ, param, ref string, limit int) ([]Found, error) {
	m.reads++
	if m.err != nil {
		return nil, m.err
	}
	var out []Found
	for _, f := range m.res {
		// A tampered row stands for an index hit whose content is unread.
		if f.Type == typ && (f.Tampered || containsRef(f.JSON, ref)) {
			out = append(out, f)
		}
	}
	return out, nil
}

func containsRef(b []byte, ref string) bool {
	return ref != "" && bytes.Contains(b, []byte(`"`+ref+`"`))
}

func (m *memSource) OwnedOfType(_ context.Context, owner, typ string, limit int) ([]Found, error) {
	m.reads++
	if m.err != nil {
		return nil, m.err
	}
	var out []Found
	for _, f := range m.res {
		if f.Type == typ && f.Owner == owner {
			out = append(out, f)
		}
	}
	return out, nil
}

func (m *memSource) Resource(_ context.Context, typ, id string) (Found, bool, error) {
	m.reads++
	if m.err != nil {
		return Found{}, false, m.err
	}
	for _, f := range m.res {
		if f.Type == typ && f.ID == id {
			return f, true, nil
		}
	}
	return Found{}, false, nil
}

func (m *memSource) OwnersOf(_ context.Context, typ, label string, _ int) ([]string, error) {
	if m.err != nil {
		return nil, m.err
	}
	var out []string
	for _, f := range m.res {
		if f.Type == typ && f.Owner != OrgOwner && (label == "" || bytes.Contains(f.JSON, []byte(`"`+strings.TrimPrefix(label, "tag:")+`"`))) {
			out = append(out, f.Owner)
		}
	}
	return out, nil
}

func (m *memSource) JointOwners(_ context.Context, patients []string, _ int) (map[string][]string, error) {
	if m.err != nil {
		return nil, m.err
	}
	out := map[string][]string{}
	for j, ps := range m.joints {
		for _, p := range ps {
			if slices.Contains(patients, p) {
				out[j] = ps
			}
		}
	}
	return out, nil
}

type memUsers map[string]identity.User

func (u memUsers) ByID(_ context.Context, id string) (identity.User, error) {
	if x, ok := u[id]; ok {
		return x, nil
	}
	return identity.User{}, identity.ErrNotFound
}

type memGrants []Grant

func (g memGrants) ActiveGrants(_ context.Context, user string, now time.Time) ([]Grant, error) {
	var out []Grant
	for _, x := range g {
		if x.UserID == user && now.Before(x.Expires) {
			out = append(out, x)
		}
	}
	return out, nil
}

func testAuthorizer(t *testing.T, src *memSource, grants memGrants, now func() time.Time) (*Authorizer, authn.Principal) {
	t.Helper()
	pol, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	users := memUsers{"u1": {ID: "u1", Username: "doc", Roles: []identity.Role{identity.RolePhysician}, FHIRUser: "Practitioner/pr"}}
	a, err := New(Options{Policies: pol, Source: src, Users: users, Grants: grants, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a, authn.Principal{Kind: "session", ID: "u1", Roles: []string{"physician"}, MFA: true}
}

var careTeamFound = Found{Type: "CareTeam", ID: "ct", Owner: "Patient/p1",
	JSON: []byte(`{"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/p1"},"participant":[{"member":{"reference":"Practitioner/pr"}}]}`)}

func TestDecideFailsClosed(t *testing.T) {
	src := &memSource{err: storage.ErrUnavailable}
	a, p := testAuthorizer(t, src, nil, nil)
	d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", ID: "o", Owner: "Patient/p1"})
	if d.Allowed || !errors.Is(err, ErrUndecidable) {
		t.Fatalf("Decide with a failing source = %+v, %v; want a denial wrapping ErrUndecidable", d, err)
	}
	a, p = testAuthorizer(t, &memSource{}, nil, nil)
	p.ID = "unknown"
	if d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: "Patient/p1"}); d.Allowed || err == nil {
		t.Fatalf("unknown user: %+v %v", d, err)
	}
	if d, err := a.Decide(t.Context(), authn.Principal{Kind: "token", ID: "t", Roles: []string{"system"}}, Read, Target{Type: "Observation", Owner: "elsewhere"}); d.Allowed || err == nil {
		t.Fatalf("unknown owner kind: %+v %v", d, err)
	}
}

func TestDecideCachesAndInvalidates(t *testing.T) {
	src := &memSource{res: []Found{careTeamFound}}
	a, p := testAuthorizer(t, src, nil, nil)
	tgt := Target{Type: "Observation", ID: "o", Owner: "Patient/p1"}
	for range 3 {
		if d, err := a.Decide(t.Context(), p, Read, tgt); err != nil || !d.Allowed {
			t.Fatalf("care-team read: %+v %v", d, err)
		}
	}
	reads := src.reads
	if _, err := a.Decide(WithoutIO(t.Context()), p, Read, tgt); err != nil {
		t.Fatalf("cached decision under WithoutIO: %v", err)
	}
	if src.reads != reads {
		t.Fatalf("a cached decision read the source (%d reads)", src.reads-reads)
	}
	// The care team ends: after the write hook, the next decision denies.
	src.res = nil
	a.Changed("CareTeam", "Patient/p1")
	other := Target{Type: "Observation", ID: "o9", Owner: "Patient/p9"}
	if _, err := a.Decide(WithoutIO(t.Context()), p, Read, other); !errors.Is(err, ErrNeedsFacts) {
		t.Fatalf("uncached patient under WithoutIO: %v, want ErrNeedsFacts", err)
	}
	if d, err := a.Decide(t.Context(), p, Read, tgt); err != nil || d.Allowed {
		t.Fatalf("after the care team ended: %+v %v", d, err)
	}
}

func TestGrantExpires(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g := Grant{ID: "g", UserID: "u1", Patient: "Patient/p2", Reason: "ETREAT", Created: now, Expires: now.Add(DefaultGrantTTL)}
	if !g.Covers("Patient/p2", now.Add(59*time.Minute)) || g.Covers("Patient/p2", now.Add(60*time.Minute)) || g.Covers("Patient/p3", now) {
		t.Fatal("Grant.Covers does not bound the grant to its patient and hour")
	}
	clock := now
	a, p := testAuthorizer(t, &memSource{}, memGrants{g}, func() time.Time { return clock })
	tgt := Target{Type: "Observation", ID: "o", Owner: "Patient/p2"}
	d, err := a.Decide(t.Context(), p, Read, tgt)
	if err != nil || !d.Allowed || d.Purpose != "ETREAT" {
		t.Fatalf("under the grant: %+v %v", d, err)
	}
	clock = now.Add(61 * time.Minute) // cached facts, expired grant
	if d, err := a.Decide(t.Context(), p, Read, tgt); err != nil || d.Allowed {
		t.Fatalf("after expiry: %+v %v", d, err)
	}
}

// TestGrantPurposeIsItsReason (penetration test: a grant opened with the
// reason BTG recorded every access under it as ETREAT): the accesses a
// grant makes possible carry the reason it was opened with.
func TestGrantPurposeIsItsReason(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, reason := range ReasonCodes {
		g := Grant{ID: "g", UserID: "u1", Patient: "Patient/p2", Reason: reason, Created: now, Expires: now.Add(DefaultGrantTTL)}
		a, p := testAuthorizer(t, &memSource{}, memGrants{g}, func() time.Time { return now })
		d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", ID: "o", Owner: "Patient/p2"})
		if err != nil || !d.Allowed || d.Purpose != reason {
			t.Errorf("grant opened with %s: %+v %v", reason, d, err)
		}
	}
}
