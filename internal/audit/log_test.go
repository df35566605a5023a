package audit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

var update = flag.Bool("update", false, "regenerate testdata golden files")

// fakeSealer "encrypts" by reversing the bytes and prefixing a marker,
// remembers the contexts it was called with, and can be made to fail.
type fakeSealer struct {
	sealCtx, openCtx []string
	failSeal         error
	failOpen         error
}

const fakeMarker = "sealed:"

func (s *fakeSealer) SealAudit(context string, pt []byte) ([]byte, error) {
	s.sealCtx = append(s.sealCtx, context)
	if s.failSeal != nil {
		return nil, s.failSeal
	}
	ct := []byte(fakeMarker + context + ":")
	for i := len(pt) - 1; i >= 0; i-- {
		ct = append(ct, pt[i])
	}
	return ct, nil
}

func (s *fakeSealer) OpenAudit(context string, ct []byte) ([]byte, error) {
	s.openCtx = append(s.openCtx, context)
	if s.failOpen != nil {
		return nil, s.failOpen
	}
	prefix := []byte(fakeMarker + context + ":")
	if !bytes.HasPrefix(ct, prefix) {
		return nil, errors.New("fake: wrong context")
	}
	ct = ct[len(prefix):]
	pt := make([]byte, 0, len(ct))
	for i := len(ct) - 1; i >= 0; i-- {
		pt = append(pt, ct[i])
	}
	return pt, nil
}

// sampleEvent is a read of one patient's observation: every field set.
func sampleEvent() audit.Event {
	return audit.Event{
		Time:    time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC),
		Action:  audit.ActionRead,
		Outcome: audit.OutcomeSuccess,
		Agent: audit.Agent{
			User: "tok-AbCdEf012345", Role: "system", Client: "cli",
			Session: "sess-42", Address: "127.0.0.1",
		},
		Purpose:   "TREAT",
		Patients:  []string{"Patient/7f1c2d3e"},
		Entities:  []string{"Observation/0a1b2c/_history/3"},
		Query:     "Observation?code&date",
		Policies:  []string{"policy-system"},
		Status:    200,
		RequestID: "req-000123",
	}
}

func TestLogSealOpenRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   audit.Event
	}{
		{"full event", sampleEvent()},
		{"minimal event", audit.Event{Time: time.Unix(0, 0).UTC(), Action: audit.ActionLogin, Outcome: audit.OutcomeDenied}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSealer{}
			l := audit.NewLog(s)
			rec, err := l.Seal(tt.ev)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if !rec.Time.Equal(tt.ev.Time) {
				t.Errorf("record time: got %v, want the event time %v", rec.Time, tt.ev.Time)
			}
			plain, err := tt.ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(rec.Body, plain) || !bytes.HasPrefix(rec.Body, []byte(fakeMarker)) {
				t.Errorf("record body is not the sealer's output: %q", rec.Body)
			}
			got, err := l.Open(rec)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("Open: got %s, want %s", got, plain)
			}
			if len(s.sealCtx) != 1 || len(s.openCtx) != 1 || s.sealCtx[0] != s.openCtx[0] || s.sealCtx[0] == "" {
				t.Errorf("seal/open contexts: %q / %q, want one equal, non-empty context each", s.sealCtx, s.openCtx)
			}
		})
	}
}

func TestLogSealerErrors(t *testing.T) {
	cause := errors.New("log key unavailable")
	tests := []struct {
		name string
		s    *fakeSealer
		op   func(l *audit.Log) error
	}{
		{"seal", &fakeSealer{failSeal: cause}, func(l *audit.Log) error {
			_, err := l.Seal(sampleEvent())
			return err
		}},
		{"open", &fakeSealer{failOpen: cause}, func(l *audit.Log) error {
			_, err := l.Open(storage.AuditRecord{Time: time.Unix(0, 0), Body: []byte("x")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(audit.NewLog(tt.s))
			if !errors.Is(err, cause) {
				t.Fatalf("got %v, want an error wrapping the sealer's", err)
			}
		})
	}
}

func TestEventGolden(t *testing.T) {
	got, err := sampleEvent().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "event.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Event.Marshal changed the on-disk audit format:\ngot  %s\nwant %s\n(if intended, run go test -update and review the diff)", got, want)
	}
}

// phiFreeFields is every JSON field an audit event may have, with why it
// cannot carry PHI. Adding a field to Event or Agent fails this test
// until the field is reviewed and listed here.
var phiFreeFields = map[string]string{
	"time":           "when the access happened",
	"action":         "a fixed code",
	"outcome":        "a fixed code",
	"agent":          "a struct of identifiers, checked field by field",
	"agent.user":     "an account id or token name, never a person's name",
	"agent.role":     "a role code",
	"agent.client":   "a client id",
	"agent.session":  "a session id, not its secret",
	"agent.address":  "the source IP of the caller (staff, not patient)",
	"purpose":        "a v3 PurposeOfUse code",
	"patients":       "pseudonymous Patient/<id> references",
	"entities":       "pseudonymous Type/id/_history/v references",
	"query":          "resource type and parameter names, never values",
	"policies":       "policy ids",
	"status":         "an HTTP status",
	"request_id":     "a server-generated id",
	"compartments":   "positions in patients (small integers), nothing else",
	"ledger":         "ledger commitments (ADR 0016), checked field by field",
	"ledger.kind":    "a fixed code",
	"ledger.ref":     "a pseudonymous Type/id/_history/v reference, or an owner",
	"ledger.owner":   "a pseudonymous key owner (Patient/<id>, org)",
	"ledger.deleted": "a flag",
	"ledger.v":       "a 32-byte keyed hash (HMAC-SHA256 under the ledger key): nothing about the content without the key",
	"ledger.i":       "a 32-byte keyed hash of blind-index rows",
	"ledger.scheme":  "a small integer naming how v and i were keyed",
}

// reviewedContainers are the container fields whose element type was
// reviewed: a struct walked field by field, or bytes that are a keyed
// hash of fixed size.
var reviewedContainers = map[string]bool{"ledger": true, "ledger.v": true, "ledger.i": true}

func TestEventFieldsCarryNoPHI(t *testing.T) {
	var got []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			got = append(got, prefix+name)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(prefix+name+".", f.Type)
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type.Elem())
			}
			if reviewedContainers[prefix+name] {
				continue
			}
			intLists := f.Type == reflect.TypeFor[[][]int]() // numbers only: they carry no content
			if k := f.Type.Kind(); k == reflect.Map || k == reflect.Interface || k == reflect.Slice && f.Type.Elem().Kind() != reflect.String && !intLists {
				t.Errorf("field %s%s is a %v: free-form containers could carry resource content", prefix, name, f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[audit.Event]())
	for _, f := range got {
		if _, ok := phiFreeFields[f]; !ok {
			t.Errorf("audit.Event has an unreviewed field %q: decide it cannot carry PHI, then list it in phiFreeFields", f)
		}
	}
	for f := range phiFreeFields {
		if !slices.Contains(got, f) {
			t.Errorf("phiFreeFields lists %q, which audit.Event no longer has", f)
		}
	}
}

// fakeScanner serves stored records in sequence order.
// fakeSource is a stored log: sealed bundles and pending records.
type fakeSource struct {
	bundles []storage.Bundle
	pending []storage.LogLeaf
}

func (f *fakeSource) ScanBundles(_ context.Context, from, to int64, fn func(storage.Bundle) error) error {
	for _, b := range f.bundles {
		if b.N >= from && b.N < to {
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeSource) ScanPending(_ context.Context, fn func(storage.LogLeaf) error) error {
	for _, l := range f.pending {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// TestLogEvents: Events opens every integrated event (bundles, v1
// leaves included) then every pending record, in order, and names the
// first bundle or record that does not open.
func TestLogEvents(t *testing.T) {
	l := audit.NewLog(&fakeSealer{})
	leaf := func(a audit.Action) []byte {
		r, err := l.Seal(audit.Event{Action: a, Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		lf, _, err := l.OpenLeaf(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return lf
	}
	v1, err := audit.Event{Action: audit.ActionLogin, Outcome: audit.OutcomeSuccess}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := l.SealBundle(0, [][]byte{v1, leaf(audit.ActionRead)}, []bool{true, false})
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{bundles: []storage.Bundle{{N: 0, Width: 2, Sealed: sealed}}}
	for i, a := range []audit.Action{audit.ActionCreate, audit.ActionSearch} {
		r, err := l.Seal(audit.Event{Action: a, Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		src.pending = append(src.pending, storage.LogLeaf{Seq: int64(i + 7), Index: -1, Body: r.Body, LeafHash: r.LeafHash})
	}
	evs, err := l.Events(t.Context(), src)
	var got []audit.Action
	for _, ev := range evs {
		got = append(got, ev.Action)
	}
	if err != nil || !slices.Equal(got, []audit.Action{audit.ActionLogin, audit.ActionRead, audit.ActionCreate, audit.ActionSearch}) {
		t.Fatalf("Events = %v, %v; want login, read, create, search", got, err)
	}
	src.pending[1].Body = []byte("tampered")
	if _, err := l.Events(t.Context(), src); err == nil || !strings.Contains(err.Error(), "audit record 8") {
		t.Errorf("a tampered record: err = %v, want one naming record 8", err)
	}
	src.pending = nil
	if _, err := l.Events(t.Context(), &fakeSource{bundles: []storage.Bundle{{N: 1, Width: 2, Sealed: sealed}}}); err == nil || !strings.Contains(err.Error(), "entry bundle 0 is missing") {
		t.Errorf("a moved bundle: err = %v, want one naming the missing entry bundle 0", err)
	}
	if _, err := l.Events(t.Context(), &fakeSource{bundles: []storage.Bundle{{N: 0, Width: 3, Sealed: sealed}}}); err == nil || !strings.Contains(err.Error(), "entry bundle 0") {
		t.Errorf("a bundle opened with another width: err = %v, want one naming entry bundle 0", err)
	}
}

// An event larger than a log entry can hold is refused, not logged
// where it could never be served (C2SP entry bundles: 16-bit lengths).
func TestSealRefusesEventsOverAnEntry(t *testing.T) {
	l := audit.NewLog(&fakeSealer{})
	ev := audit.Event{Time: time.Now(), Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess}
	for i := 0; i < 2000; i++ {
		ev.Entities = append(ev.Entities, fmt.Sprintf("Observation/%036d/_history/1", i))
	}
	if _, err := l.Seal(ev); !errors.Is(err, audit.ErrEventTooLarge) {
		t.Fatalf("sealing a %d-entity event: %v, want ErrEventTooLarge", len(ev.Entities), err)
	}
	ev.Entities = ev.Entities[:256]
	if _, err := l.Seal(ev); err != nil {
		t.Fatalf("sealing a 256-entity event: %v", err)
	}
}
