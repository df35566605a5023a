package ownlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
)

// memLog is an integrated log in memory (v1 leaves: the event alone).
type memLog struct{ leaves [][]byte }

func (m *memLog) add(t *testing.T, ev audit.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m.leaves = append(m.leaves, b)
}

func (m *memLog) Size(context.Context) (int64, error) { return int64(len(m.leaves)), nil }

func (m *memLog) ScanLeaves(_ context.Context, from, to int64, fn func(int64, []byte, bool) error) error {
	for i := from; i < to; i++ {
		if err := fn(i, m.leaves[i], true); err != nil {
			return err
		}
	}
	return nil
}

// memCursors is export.Cursors with compare-and-set.
type memCursors map[string]int64

func (c memCursors) Cursor(_ context.Context, n string) (int64, error) { return c[n], nil }
func (c memCursors) Advance(_ context.Context, n string, from, to int64) error {
	if c[n] != from {
		return export.ErrMoved
	}
	c[n] = to
	return nil
}

// records is a loader Source over JSON bodies.
type records map[string]string // "Type/id" -> JSON

func (r records) OwnedOfType(_ context.Context, owner, typ string, _ int) ([]authz.Found, error) {
	var out []authz.Found
	for k, v := range r {
		var doc struct {
			ResourceType string `json:"resourceType"`
			Subject      struct {
				Reference string `json:"reference"`
			} `json:"subject"`
		}
		_ = json.Unmarshal([]byte(v), &doc)
		o := "org"
		if doc.Subject.Reference != "" {
			o = doc.Subject.Reference
		}
		if doc.ResourceType == typ && o == owner {
			out = append(out, authz.Found{Type: typ, ID: k[len(typ)+1:], Owner: o, JSON: []byte(v)})
		}
	}
	return out, nil
}

func (r records) Resource(_ context.Context, typ, id string) (authz.Found, bool, error) {
	v, ok := r[typ+"/"+id]
	if !ok {
		return authz.Found{}, false, nil
	}
	return authz.Found{Type: typ, ID: id, JSON: []byte(v)}, true, nil
}

type users map[string]identity.User

func (u users) ByID(_ context.Context, id string) (identity.User, error) {
	if x, ok := u[id]; ok {
		return x, nil
	}
	return identity.User{}, identity.ErrNotFound
}

type always struct{}

func (always) Lead(context.Context) (bool, error) { return true, nil }
func (always) Release()                           {}

const demo = `"name":[{"family":"Quendelby","given":["Ottilie"]}],"birthDate":"1979-03-14","address":[{"line":["12 Orchard Row"],"postalCode":"HB1 4QT"}]`

func fixture(t *testing.T) (*memLog, memCursors, *Loader) {
	t.Helper()
	recs := records{
		"Practitioner/pr1": `{"resourceType":"Practitioner",` + demo + `}`,
		"Patient/p1":       `{"resourceType":"Patient",` + demo + `}`,
	}
	l, err := NewLoader(LoaderOptions{Source: recs, Users: users{"u1": {ID: "u1", FHIRUser: "Practitioner/pr1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &memLog{}, memCursors{}, l
}

// A failed save leaves the cursor where it was; the next step stores
// the same alerts without feeding the events again, then moves on.
func TestFollowerSavesBeforeTheCursorMoves(t *testing.T) {
	log, cur, l := fixture(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	log.add(t, audit.Event{Time: at, Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u1", Session: "s1"}, Patients: []string{"Patient/p1"}})
	fail := true
	var saved [][]monitor.Alert
	f, err := NewFollower(FollowerOptions{Source: log, Cursors: cur, Loader: l, Leader: always{},
		Save: func(_ context.Context, as []monitor.Alert) ([]string, error) {
			if fail {
				return nil, errors.New("database down")
			}
			saved = append(saved, as)
			ids := make([]string, len(as))
			for i := range as {
				ids[i] = fmt.Sprint("a", i)
			}
			return ids, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Step(t.Context()); err == nil {
		t.Fatal("a failed save did not fail the step")
	}
	if cur[CursorName] != 0 {
		t.Fatalf("the cursor moved to %d past alerts not stored", cur[CursorName])
	}
	fail = false
	if n, err := f.Step(t.Context()); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if cur[CursorName] != 1 || len(saved) != 1 {
		t.Fatalf("cursor %d, %d saves", cur[CursorName], len(saved))
	}
	var self *monitor.Alert
	for i, a := range saved[0] {
		if a.Category == monitor.CatSelf {
			self = &saved[0][i]
		}
	}
	if self == nil || self.User != "Practitioner/pr1" || len(self.Evidence.Accesses) != 1 || self.Evidence.Accesses[0].Ref != "leaf/0" {
		t.Fatalf("saved %+v, want one self alert with one access (the event fed once)", saved[0])
	}
	if n, err := f.Step(t.Context()); err != nil || n != 0 {
		t.Errorf("caught up: %d, %v", n, err)
	}
}

// A cursor another process moved stops the step (ErrMoved) before any
// alert of a stale engine is stored.
func TestFollowerStepsBackWhenTheCursorMoved(t *testing.T) {
	log, cur, l := fixture(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		log.add(t, audit.Event{Time: at.Add(time.Duration(i) * time.Minute), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u1"}, Patients: []string{"Patient/p1"}})
	}
	saves := 0
	f, err := NewFollower(FollowerOptions{Source: log, Cursors: cur, Loader: l, Leader: always{}, Batch: 1,
		Save: func(_ context.Context, as []monitor.Alert) ([]string, error) {
			saves++
			cur[CursorName] = 3 // another leader stored everything meanwhile
			return make([]string, len(as)), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Step(t.Context()); !errors.Is(err, export.ErrMoved) {
		t.Fatalf("step after another process moved the cursor: %v, want ErrMoved", err)
	}
	f.round(t.Context()) // resets and restarts from the cursor: nothing left
	if cur[CursorName] != 3 || saves != 1 {
		t.Errorf("cursor %d, %d saves", cur[CursorName], saves)
	}
}
