package audit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
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
	"time":          "when the access happened",
	"action":        "a fixed code",
	"outcome":       "a fixed code",
	"agent":         "a struct of identifiers, checked field by field",
	"agent.user":    "an account id or token name, never a person's name",
	"agent.role":    "a role code",
	"agent.client":  "a client id",
	"agent.session": "a session id, not its secret",
	"agent.address": "the source IP of the caller (staff, not patient)",
	"purpose":       "a v3 PurposeOfUse code",
	"patients":      "pseudonymous Patient/<id> references",
	"entities":      "pseudonymous Type/id/_history/v references",
	"query":         "resource type and parameter names, never values",
	"policies":      "policy ids",
	"status":        "an HTTP status",
	"request_id":    "a server-generated id",
}

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
			if k := f.Type.Kind(); k == reflect.Map || k == reflect.Interface || k == reflect.Slice && f.Type.Elem().Kind() != reflect.String {
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
type fakeScanner []storage.AuditRecord

func (f fakeScanner) ScanAudit(_ context.Context, after int64, fn func(int64, storage.AuditRecord) error) error {
	for i, r := range f {
		if seq := int64(i + 1); seq > after {
			if err := fn(seq, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestLogEvents: Events opens every record after a sequence number, in
// order, and names the first record that does not open.
func TestLogEvents(t *testing.T) {
	l := audit.NewLog(&fakeSealer{})
	var recs fakeScanner
	for _, a := range []audit.Action{audit.ActionRead, audit.ActionCreate, audit.ActionSearch} {
		r, err := l.Seal(audit.Event{Action: a, Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	evs, err := l.Events(t.Context(), recs, 1)
	if err != nil || len(evs) != 2 || evs[0].Action != audit.ActionCreate || evs[1].Action != audit.ActionSearch {
		t.Fatalf("Events after 1 = %+v, %v; want create, search", evs, err)
	}
	recs[1].Body = []byte("tampered")
	if _, err := l.Events(t.Context(), recs, 0); err == nil || !strings.Contains(err.Error(), "audit record 2") {
		t.Errorf("a tampered record: err = %v, want one naming record 2", err)
	}
}
