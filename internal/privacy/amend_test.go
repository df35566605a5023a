package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
)

// amendStore is the amendments table and the audit table behind a fake
// unit of work: a failing fn leaves both as they were.
type amendStore struct {
	log    *audit.Log
	rows   map[string]storage.Amendment
	events []audit.Event
	failTx error
}

type amendTx struct {
	st     *amendStore
	rows   map[string]storage.Amendment
	events []audit.Event
}

func (s *amendStore) Update(_ context.Context, fn func(privacy.AmendTx) error) error {
	if s.failTx != nil {
		return s.failTx
	}
	t := &amendTx{st: s, rows: map[string]storage.Amendment{}, events: slices.Clone(s.events)}
	for k, v := range s.rows {
		t.rows[k] = v
	}
	if err := fn(t); err != nil {
		return err
	}
	s.rows, s.events = t.rows, t.events
	return nil
}

func (t *amendTx) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	for _, rec := range recs {
		b, err := t.st.log.Open(rec)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		t.events = append(t.events, ev)
	}
	return nil
}

func (t *amendTx) InsertAmendment(_ context.Context, a storage.Amendment) error {
	if _, ok := t.rows[a.ID]; ok {
		return storage.ErrConflict
	}
	t.rows[a.ID] = a
	return nil
}

func (t *amendTx) DecideAmendment(_ context.Context, id, state, decider string, at time.Time, reason []byte) error {
	a, ok := t.rows[id]
	switch {
	case !ok:
		return storage.ErrNotFound
	case a.State != "open":
		return storage.ErrConflict
	}
	a.State, a.Decider, a.Decided, a.Reason = state, decider, at, reason
	t.rows[id] = a
	return nil
}

func (s *amendStore) Amendments(_ context.Context, patient string, open bool, limit int) ([]storage.Amendment, error) {
	var out []storage.Amendment
	for _, a := range s.rows {
		if (patient == "" || a.Patient == patient) && (!open || a.State == "open") {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b storage.Amendment) int { return b.Created.Compare(a.Created) })
	return out[:min(limit, len(out))], nil
}

func (s *amendStore) Amendment(_ context.Context, id string) (storage.Amendment, error) {
	a, ok := s.rows[id]
	if !ok {
		return a, storage.ErrNotFound
	}
	return a, nil
}

func newAmendments(t *testing.T, n notes) (*privacy.Amendments, *amendStore) {
	t.Helper()
	log := audit.NewLog(plainSealer{})
	st := &amendStore{log: log, rows: map[string]storage.Amendment{}}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a, err := privacy.NewAmendments(privacy.AmendOptions{Tx: st, Store: st, Notes: n, Log: log, Now: func() time.Time { return now },
		Rand: bytes.NewReader(bytes.Repeat([]byte{0xcd}, 64))})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// A request is sealed, stored with its event, listed (the read audited
// before the texts are opened), and decided once; a denial needs its
// reason; no text reaches an event.
func TestAmendments(t *testing.T) {
	am, st := newAmendments(t, notes{})
	ctx := t.Context()
	by := privacy.Actor{Agent: patient, Purpose: "PATRQT", RequestID: "req-1", Status: 303}
	for _, tc := range []struct {
		name string
		n    privacy.NewAmendment
		want string
	}{
		{"no part", privacy.NewAmendment{Patient: "Patient/p1", Wrong: "x"}, "Choose which part"},
		{"nothing wrong", privacy.NewAmendment{Patient: "Patient/p1", Part: "allergies", Wrong: "  "}, "Say what is wrong"},
		{"too long", privacy.NewAmendment{Patient: "Patient/p1", Part: "allergies", Wrong: strings.Repeat("x", privacy.MaxAmendText+1)}, "2,000"},
		{"control characters", privacy.NewAmendment{Patient: "Patient/p1", Part: "allergies", Wrong: "a\x00b"}, "not text"},
	} {
		if _, err := am.Create(ctx, by, tc.n); !errors.Is(err, privacy.ErrAmendment) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrAmendment saying %q", tc.name, err, tc.want)
		}
	}
	if len(st.rows) != 0 || len(st.events) != 0 {
		t.Fatalf("refused requests stored %d rows, %d events", len(st.rows), len(st.events))
	}
	a, err := am.Create(ctx, by, privacy.NewAmendment{Patient: "Patient/p1", Requester: "usr_p", Part: "allergies", Wrong: "penicillin missing", Should: "allergic to penicillin"})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.rows[a.ID]; !bytes.Contains(got.Request, []byte("{")) || !bytes.HasPrefix(got.Request, []byte("Patient/p1|"+a.ID+"|3|")) {
		t.Errorf("stored request %q, want it sealed as part 3", got.Request)
	}
	if ev := st.events[0]; ev.Action != audit.ActionAmendmentRequest || !slices.Equal(ev.Entities, []string{"Amendment/" + a.ID}) ||
		!slices.Equal(ev.Policies, []string{"part=allergies"}) || !slices.Equal(ev.Patients, []string{"Patient/p1"}) {
		t.Errorf("request event %+v", ev)
	}
	offBy := privacy.Actor{Agent: officer, Purpose: "HOPERAT", RequestID: "req-2", Status: 303}
	if err := am.Decide(ctx, offBy, a.ID, false, " "); !errors.Is(err, privacy.ErrAmendment) {
		t.Errorf("a denial without a reason: %v, want ErrAmendment", err)
	}
	if err := am.Decide(ctx, offBy, a.ID, false, "test was negative"); err != nil {
		t.Fatal(err)
	}
	if err := am.Decide(ctx, offBy, a.ID, true, ""); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("deciding twice: %v, want ErrConflict", err)
	}
	list, err := am.List(ctx, privacy.Actor{Agent: patient, Purpose: "PATRQT"}, "Patient/p1", false, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if o := list[0]; o.Wrong != "penicillin missing" || o.Should != "allergic to penicillin" || o.Reason != "test was negative" || o.State != "denied" || o.Unreadable {
		t.Errorf("listed %+v", o)
	}
	var actions []audit.Action
	for _, ev := range st.events {
		actions = append(actions, ev.Action)
		if b, _ := json.Marshal(ev); bytes.Contains(b, []byte("penicillin")) || bytes.Contains(b, []byte("negative")) {
			t.Errorf("a text is in the event %s", b)
		}
	}
	if want := []audit.Action{audit.ActionAmendmentRequest, audit.ActionAmendmentDecide, audit.ActionAmendmentRead}; !slices.Equal(actions, want) {
		t.Errorf("events %v, want %v", actions, want)
	}
	if ev := st.events[1]; !slices.Equal(ev.Policies, []string{"decision=denied"}) || ev.Agent != officer {
		t.Errorf("decision event %+v", ev)
	}
	// When the read cannot be recorded, nothing is opened.
	st.failTx = storage.ErrUnavailable
	if l, err := am.List(ctx, privacy.Actor{Agent: patient}, "Patient/p1", false, 10); !errors.Is(err, audit.ErrUnavailable) || l != nil {
		t.Errorf("List with the log down: %v, %v; want audit.ErrUnavailable and nothing", l, err)
	}
}

// dir is a directory of a few accounts.
type dir []identity.User

func (d dir) ByID(_ context.Context, id string) (identity.User, error) {
	return identity.User{}, identity.ErrNotFound
}
func (d dir) ByUsername(_ context.Context, n string) (identity.User, error) {
	return identity.User{}, identity.ErrNotFound
}
func (d dir) List(_ context.Context, after string, limit int) ([]identity.User, error) {
	var out []identity.User
	for _, u := range d {
		if u.Username > after && len(out) < limit {
			out = append(out, u)
		}
	}
	return out, nil
}

// A staff lookup matches every word in the name or username, leaves
// patients out, and records the lookup (the field, never the value).
func TestTrailStaff(t *testing.T) {
	log := audit.NewLog(plainSealer{})
	st := &fakeStore{log: log, reports: map[string]storage.AccessReport{}}
	tr, err := privacy.NewTrail(privacy.TrailOptions{Tx: st, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	d := dir{
		{ID: "u1", Username: "dr.dana", DisplayName: "Dana Doctor", Roles: []identity.Role{identity.RolePhysician}},
		{ID: "u2", Username: "n.dana", DisplayName: "Dana Nurse", Roles: []identity.Role{identity.RoleNurse}},
		{ID: "u3", Username: "dana.patient", Roles: []identity.Role{identity.RolePatient}},
	}
	by := privacy.Actor{Agent: officer, Purpose: "HOPERAT"}
	got, err := tr.Staff(t.Context(), by, d, "DANA doc")
	if err != nil || len(got) != 1 || got[0].ID != "u1" {
		t.Fatalf("Staff = %+v, %v; want Dana Doctor only", got, err)
	}
	got, err = tr.Staff(t.Context(), by, d, "dana")
	if err != nil || len(got) != 2 {
		t.Fatalf("Staff(dana) = %+v, %v; want the two staff, not the patient", got, err)
	}
	if ev := st.events[1]; ev.Action != audit.ActionPeopleLookup || ev.Query != "User?name" || !slices.Equal(ev.Entities, []string{"User/u1", "User/u2"}) {
		t.Errorf("lookup event %+v", ev)
	}
	if _, err := tr.Staff(t.Context(), by, d, "  "); !errors.Is(err, privacy.ErrLookup) {
		t.Errorf("empty lookup: %v", err)
	}
	st.failTx = storage.ErrUnavailable
	if got, err := tr.Staff(t.Context(), by, d, "dana"); !errors.Is(err, audit.ErrUnavailable) || got != nil {
		t.Errorf("lookup with the log down: %+v, %v; want nothing", got, err)
	}
	if err := tr.Export(t.Context(), by, privacy.Export{Format: "csv", Leaves: []int64{4}}); !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("export with the log down: %v", err)
	}
}
