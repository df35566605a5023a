package ledger

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
)

func TestSplitRef(t *testing.T) {
	for ref, want := range map[string]struct {
		key string
		v   int64
		ok  bool
	}{
		"Observation/o1/_history/3":    {"Observation/o1", 3, true},
		"Observation/o1/_history/0":    {ok: false},
		"Observation/o1/_history/-2":   {ok: false},
		"Observation/o1/_history/x":    {ok: false},
		"Observation/_history/1":       {ok: false},
		"Observation/a/b/_history/1":   {ok: false},
		"Patient/p":                    {ok: false},
		"":                             {ok: false},
		"Observation/o1/_history/1e10": {ok: false},
	} {
		key, v, ok := splitRef(ref)
		if ok != want.ok || (ok && (key != want.key || v != want.v)) {
			t.Errorf("splitRef(%q) = %q, %d, %t; want %+v", ref, key, v, ok, want)
		}
	}
}

// TestReplayDerivesErasureMarkers: an erasure of the owner of a live
// resource implies a delete marker as the next version; one of another
// owner, of a deleted resource, or before the resource existed implies
// nothing.
func TestReplayDerivesErasureMarkers(t *testing.T) {
	v := &view{erasures: map[ident.Owner][]int64{"Patient/a": {5}, "Patient/b": {1, 9}}}
	c := &checker{view: v}
	put := func(pos, version int64, owner ident.Owner, deleted bool) entry {
		return entry{pos: pos, kind: audit.CommitPut, version: version, owner: owner, deleted: deleted, v: []byte{1}}
	}
	exp, _, newest := c.replay([]entry{put(2, 1, "Patient/a", false), put(7, 3, "Patient/a", false)})
	if m := exp[2]; newest != 3 || m == nil || !m.derived || !m.deleted || m.owner != "Patient/a" || m.pos != 5 {
		t.Errorf("erased between v1 and v3: newest %d, v2 %+v; want a marker at 5", newest, m)
	}
	exp, _, newest = c.replay([]entry{put(2, 1, "Patient/b", false), put(3, 2, "Patient/b", true)})
	if newest != 2 || len(exp) != 2 {
		t.Errorf("erased after the resource was deleted: newest %d, %d versions; want no marker", newest, len(exp))
	}
	exp, _, newest = c.replay([]entry{put(2, 1, "Patient/b", false)})
	if m := exp[2]; newest != 2 || m == nil || m.pos != 9 {
		t.Errorf("erased (the second time) after v1: newest %d, v2 %+v", newest, m)
	}
	exp, _, newest = c.replay([]entry{put(2, 1, "org", false)})
	if newest != 1 || len(exp) != 1 {
		t.Errorf("another owner's erasure: newest %d, %d versions", newest, len(exp))
	}
}

// FuzzLogEvent feeds arbitrary event bytes to the ledger's reading of
// the log: it must never panic, and whatever it records must be well
// formed (a resource key and a positive version).
func FuzzLogEvent(f *testing.F) {
	ev := audit.Event{Time: time.Unix(1700000000, 0).UTC(), Action: audit.ActionUpdate, Outcome: audit.OutcomeSuccess,
		Ledger: []audit.Commit{{Kind: audit.CommitPut, Ref: "Observation/o1/_history/2", Owner: "Patient/p", Version: make([]byte, 32), Index: make([]byte, 32)}}}
	b, _ := json.Marshal(ev)
	f.Add(b)
	erase := audit.Event{Action: audit.ActionErase, Outcome: audit.OutcomeSuccess, Patients: []string{"Patient/p"}}
	b, _ = json.Marshal(erase)
	f.Add(b)
	f.Add([]byte(`{"ledger":[{"kind":"start","v":"AAAA"},{"kind":"erase","ref":"Patient/x"},{"kind":"index","ref":"A/b/_history/1"}]}`))
	f.Add([]byte(`{"ledger":[{"kind":"nope"}],"action":"$erase"}`))
	f.Fuzz(func(t *testing.T, ev []byte) {
		p := newPart()
		p.add(7, "leaf 7", ev)
		for key, es := range p.byRes {
			if _, _, ok := splitRef(key + "/_history/1"); !ok {
				t.Fatalf("recorded a malformed resource key %q", key)
			}
			for _, e := range es {
				if e.version < 1 || e.pos != 7 {
					t.Fatalf("recorded %+v", e)
				}
			}
		}
	})
}
