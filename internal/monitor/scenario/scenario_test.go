package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/balp"
	"github.com/phivault/phivault/internal/monitor/fhirctx"
)

// tiny is the smallest scenario the tests generate.
var tiny = Options{Seed: 7, Patients: 1500, Practitioners: 70, Days: 10, Incidents: 2}

type files struct{ context, events, truth []byte }

func generateAll(t testing.TB, o Options) (*Scenario, files) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var c, e, tr bytes.Buffer
	if err := s.WriteContext(&c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteEvents(&e); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteTruth(&tr); err != nil {
		t.Fatal(err)
	}
	return s, files{c.Bytes(), e.Bytes(), tr.Bytes()}
}

func TestSameSeedSameBytes(t *testing.T) {
	_, a := generateAll(t, tiny)
	_, b := generateAll(t, tiny)
	if !bytes.Equal(a.context, b.context) || !bytes.Equal(a.events, b.events) || !bytes.Equal(a.truth, b.truth) {
		t.Fatal("two runs with the same options gave different files")
	}
	o := tiny
	o.Seed++
	_, c := generateAll(t, o)
	if bytes.Equal(a.context, c.context) || bytes.Equal(a.events, c.events) {
		t.Fatal("another seed gave the same files")
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{Patients: 1000, Practitioners: 10, Days: 10},
		{Patients: 100, Practitioners: 70, Days: 10},
		{Patients: 1000, Practitioners: 70, Days: 2},
		{Patients: 1000, Practitioners: 70, Days: 10, MaxEvents: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted out-of-range options", o)
		}
	}
	if _, err := Size("huge", 1); err == nil {
		t.Error("Size accepted an unknown name")
	}
}

var (
	validatorOnce sync.Once
	validator     *fhir.Validator
)

func r4() *fhir.Validator {
	validatorOnce.Do(func() { validator = fhir.NewValidator() })
	return validator
}

// TestContextIsValidR4 validates every resource of the Bundle, and the
// Bundle's own shape, against the R4 schema and required elements.
func TestContextIsValidR4(t *testing.T) {
	_, f := generateAll(t, tiny)
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(f.context, &b); err != nil {
		t.Fatal(err)
	}
	if b.ResourceType != "Bundle" || b.Type != "collection" || len(b.Entry) == 0 {
		t.Fatalf("not a collection Bundle: %s %s, %d entries", b.ResourceType, b.Type, len(b.Entry))
	}
	types := map[string]int{}
	for i, e := range b.Entry {
		var res fhir.Resource
		if err := json.Unmarshal(e.Resource, &res); err != nil {
			t.Fatal(err)
		}
		types[res.Type()]++
		if err := r4().Validate(res); err != nil {
			t.Fatalf("entry %d (%s/%v): %v", i, res.Type(), res["id"], err)
		}
	}
	for _, want := range []string{"Organization", "Practitioner", "PractitionerRole", "Patient", "Encounter",
		"CareTeam", "ServiceRequest", "Account", "Claim"} {
		if types[want] == 0 {
			t.Errorf("no %s in the context", want)
		}
	}
	// The Bundle as a whole, with a few entries (nested validation is slow).
	var whole fhir.Resource
	if err := json.Unmarshal(f.context, &whole); err != nil {
		t.Fatal(err)
	}
	whole["entry"] = whole["entry"].([]any)[:40]
	if err := r4().Validate(whole); err != nil {
		t.Fatalf("Bundle: %v", err)
	}
}

// TestEventsAreValidR4 validates AuditEvent lines: every tenth line and
// every line that is not a successful read (logins, failures, exports).
func TestEventsAreValidR4(t *testing.T) {
	_, f := generateAll(t, tiny)
	sc := bufio.NewScanner(bytes.NewReader(f.events))
	sc.Buffer(nil, 16<<20)
	var last string
	for n := 0; sc.Scan(); n++ {
		line := sc.Bytes()
		var res fhir.Resource
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		rec, _ := res["recorded"].(string)
		if rec < last {
			t.Fatalf("line %d: recorded %s before the line above (%s)", n+1, rec, last)
		}
		last = rec
		if n%10 != 0 && res["outcome"] == "0" && bytes.Contains(line, []byte(`"code":"read"`)) {
			continue
		}
		if err := r4().Validate(res); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryCategoryIsInjected checks the truth of the small size on
// three seeds: every category, rows naming resources of the context,
// attacks with an address, and the events to back each row.
func TestEveryCategoryIsInjected(t *testing.T) {
	if testing.Short() {
		t.Skip("generates three small scenarios")
	}
	for seed := int64(1); seed <= 3; seed++ {
		o, err := Size("small", seed)
		if err != nil {
			t.Fatal(err)
		}
		s, f := generateAll(t, o)
		dir, err := fhirctx.Parse(bytes.NewReader(f.context))
		if err != nil {
			t.Fatalf("seed %d: the context does not parse: %v", seed, err)
		}
		truth, err := ParseTruth(bytes.NewReader(f.truth))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(truth, s.Truth()) {
			t.Fatal("ParseTruth(WriteTruth) differs from Truth")
		}
		per := map[monitor.Category]int{}
		for _, r := range truth {
			per[r.Category]++
			if r.User != "" && dir.Practitioners[r.User] == nil {
				t.Errorf("seed %d: truth names %s, not in the context", seed, r.User)
			}
			if r.Patient != "" && dir.Patients[r.Patient] == nil {
				t.Errorf("seed %d: truth names %s, not in the context", seed, r.Patient)
			}
			if Attack(r.Category) && r.Address == "" {
				t.Errorf("seed %d: %s row without an address", seed, r.Category)
			}
			if !Attack(r.Category) && r.Patient == "" {
				t.Errorf("seed %d: %s row without a patient", seed, r.Category)
			}
		}
		for _, c := range Categories {
			if per[c] == 0 {
				t.Errorf("seed %d: no %s incident at size small", seed, c)
			}
		}
		checkEventsBackTruth(t, dir, f.events, truth)
	}
}

// checkEventsBackTruth reads the log through balp and checks that every
// truth pair was accessed, that no truth pair (but off-hours ones) has
// any relationship in the context that could explain it, that off-hours
// accesses fall outside the user's roster, and that every attack address
// appears in the log.
func checkEventsBackTruth(t *testing.T, dir *monitor.Directory, events []byte, truth []TruthRow) {
	t.Helper()
	type pair struct{ u, p string }
	seen := map[pair][]time.Time{}
	addrs := map[string]bool{}
	rd := balp.NewReader(bytes.NewReader(events))
	rd.Directory = dir
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		addrs[ev.Address] = true
		if ev.Kind == monitor.KindAccess && ev.Outcome == monitor.OutcomeSuccess {
			seen[pair{ev.User, ev.Patient}] = append(seen[pair{ev.User, ev.Patient}], ev.Time)
		}
	}
	for _, r := range truth {
		if r.Address != "" && !addrs[r.Address] {
			t.Errorf("%s row: address %s never in the log", r.Category, r.Address)
		}
		if r.Patient == "" || Attack(r.Category) {
			continue
		}
		times := seen[pair{r.User, r.Patient}]
		if len(times) == 0 {
			t.Errorf("%s row %s -> %s: no access in the log", r.Category, r.User, r.Patient)
			continue
		}
		if r.Category == monitor.CatOffHours {
			// The nurse also sees these patients on her shifts; the
			// incident is the access far from any of them.
			off := false
			for _, at := range times {
				off = off || !onRoster(dir.Practitioners[r.User], at) && !onRoster(dir.Practitioners[r.User], at.Add(-3*time.Hour))
			}
			if !off {
				t.Errorf("off-hours row %s -> %s: no access three hours away from the roster", r.User, r.Patient)
			}
			continue
		}
		if why := explanation(dir, r.User, r.Patient); why != "" {
			t.Errorf("%s row %s -> %s is explained by %s", r.Category, r.User, r.Patient, why)
		}
	}
}

// explanation looks, independently of the generator, for any
// relationship in the directory between a user and a patient, ignoring
// time and rosters: being named on it, or sharing a department
// (including parents, but not the hospital itself) with it; a billing
// clerk and any billing relation.
func explanation(dir *monitor.Directory, user, patient string) string {
	up := dir.Practitioners[user]
	orgs := map[string]bool{}
	billing := false
	for _, role := range up.Roles {
		for o := role.Organization; o != ""; o = dir.Departments[o].PartOf {
			if dir.Departments[o].PartOf == "" {
				break // the hospital
			}
			orgs[o] = true
		}
		billing = billing || slices.Contains(role.Codes, "billing")
	}
	for _, rel := range dir.Relations[patient] {
		if billing && rel.Kind == monitor.RelBilling {
			return rel.Ref
		}
		for _, p := range rel.Participants {
			if p == user || orgs[p] {
				return rel.Ref
			}
		}
		for _, o := range rel.Organizations {
			for ; o != ""; o = dir.Departments[o].PartOf {
				if orgs[o] {
					return rel.Ref
				}
			}
		}
	}
	return ""
}

func onRoster(p *monitor.Person, at time.Time) bool {
	m := time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute
	for _, r := range p.Roles {
		for _, s := range r.Shifts {
			day := func(d time.Weekday) bool { return len(s.Days) == 0 || slices.Contains(s.Days, d) }
			if s.Start < s.End && day(at.Weekday()) && m >= s.Start && m < s.End {
				return true
			}
			if s.End <= s.Start && (day(at.Weekday()) && m >= s.Start || day((at.Weekday()+6)%7) && m < s.End) {
				return true
			}
		}
	}
	return false
}

// countingWriter samples the heap while the log is written.
type countingWriter struct {
	n, writes int64
	peak      uint64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	w.writes++
	if w.writes%200 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.peak = max(w.peak, ms.HeapInuse)
	}
	return len(b), nil
}

// TestEventsStreamInBoundedMemory writes 200,000 events of a medium
// hospital and checks that the heap in use stays far below the size of
// the log: events are held for one day at a time.
func TestEventsStreamInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 events")
	}
	o, err := Size("medium", 1)
	if err != nil {
		t.Fatal(err)
	}
	o.MaxEvents = 200_000
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	w := &countingWriter{}
	n, err := s.WriteEvents(w)
	if err != nil {
		t.Fatal(err)
	}
	if n != o.MaxEvents {
		t.Fatalf("wrote %d events, want %d", n, o.MaxEvents)
	}
	grew := int64(w.peak) - int64(base)
	t.Logf("log %d MiB; heap in use %d MiB after New, peak %d MiB while writing", w.n>>20, base>>20, w.peak>>20)
	// One day of a 400-practitioner hospital is about 12,000 events; the
	// whole log is above 150 MiB. 64 MiB of growth would mean the log is
	// being kept.
	if w.n < 150<<20 || grew > 64<<20 {
		t.Fatalf("heap grew by %d MiB while writing %d MiB", grew>>20, w.n>>20)
	}
}

func FuzzParseTruth(f *testing.F) {
	f.Add("Practitioner/pr1\tPatient/pt2\tfamily\t\n\tPractitioner/pr3\t\tcredential\t203.0.113.9\n")
	f.Add("a\tb\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ParseTruth(strings.NewReader(in))
		if err != nil || strings.Contains(in, "\r") {
			return // a line's trailing CR is dropped (CRLF files read)
		}
		var buf bytes.Buffer
		s := &Scenario{truth: rows}
		if err := s.WriteTruth(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ParseTruth(&buf)
		if err != nil || !slices.Equal(rows, again) {
			t.Fatalf("round trip: %v, %v != %v", err, again, rows)
		}
	})
}
