package monitor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// ward adds n cardiology nurses (Practitioner/n0...) without a roster
// and returns the directory with encounters of Patient/p0..p99 in
// cardiology, so that their accesses are explained.
func ward(n int) *Directory {
	d := testDirectory()
	for i := range n {
		ref := fmt.Sprintf("Practitioner/n%d", i)
		d.Practitioners[ref] = &Person{Ref: ref, Family: fmt.Sprintf("Nurse%d", i), BirthDate: "1990-01-01",
			Roles: []Role{{Organization: "Organization/cardio", Codes: []string{"nurse"}}}}
	}
	for i := range 100 {
		p := fmt.Sprintf("Patient/p%d", i)
		d.Relations[p] = []Relation{{Kind: RelEncounter, Ref: "Encounter/" + p, Organizations: []string{"Organization/cardio"},
			Start: t0.Add(-48 * time.Hour), End: t0.Add(48 * time.Hour)}}
	}
	return d
}

// routine makes every nurse read 4 explained patients an hour for hours.
func routine(n, hours int) []Event {
	var evs []Event
	for h := range hours {
		for k := range 4 {
			for i := range n {
				at := t0.Add(time.Duration(h)*time.Hour + time.Duration(k*10+i%10)*time.Minute)
				evs = append(evs, access(at, fmt.Sprintf("Practitioner/n%d", i), fmt.Sprintf("Patient/p%d", (h*4+k+i)%100)))
			}
		}
	}
	return evs
}

func sortByTime(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
}

func TestRoutineYieldsNothing(t *testing.T) {
	evs := routine(8, 8)
	sortByTime(evs)
	if as := run(ward(8), evs...); len(as) != 0 {
		t.Fatalf("routine work: %+v", as)
	}
}

func TestBrowsing(t *testing.T) {
	evs := routine(8, 8)
	// Nurse n0 opens 25 strangers' records in twenty minutes.
	for i := range 25 {
		evs = append(evs, access(t0.Add(5*time.Hour+time.Duration(i)*48*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
	}
	sortByTime(evs)
	as := run(ward(8), evs...)
	if len(as) != 1 {
		t.Fatalf("want one incident, got %d: %+v", len(as), as)
	}
	a := as[0]
	if a.Category != CatBrowsing || a.User != "Practitioner/n0" || len(a.Patients) != 25 || !slices.Contains(a.Categories, CatVolume) {
		t.Fatalf("incident: %s %v %d patients", a.Category, a.Categories, len(a.Patients))
	}
	// The same burst across the hour: the patients after it are listed.
	evs = routine(8, 8)
	for i := range 23 { // 20 before the hour, 3 after
		evs = append(evs, access(t0.Add(5*time.Hour+40*time.Minute+time.Duration(i)*60*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
	}
	sortByTime(evs)
	if as := run(ward(8), evs...); len(as) != 1 || len(as[0].Patients) != 23 {
		t.Fatalf("a burst across the hour: %+v", as)
	}
	if a.Key != "test|Practitioner/n0||behaviour|2026-03-02" {
		t.Fatalf("key %q", a.Key)
	}
	for _, p := range a.Patients {
		var n int
		if _, err := fmt.Sscanf(p, "Patient/p%d", &n); err != nil || n < 200 {
			t.Fatalf("the incident lists an explained patient %s", p)
		}
	}
	if len(a.Evidence.Accesses) != DefaultMaxEvidence {
		t.Fatalf("evidence %d accesses", len(a.Evidence.Accesses))
	}
}

func TestVolume(t *testing.T) {
	evs := routine(8, 8)
	// Nurse n1 opens 60 of the ward's patients in an hour: a spike, but
	// every access is explained.
	for i := range 60 {
		evs = append(evs, access(t0.Add(6*time.Hour+time.Duration(i)*time.Minute), "Practitioner/n1", fmt.Sprintf("Patient/p%d", i)))
	}
	sortByTime(evs)
	if as := run(ward(8), evs...); len(as) != 0 {
		t.Fatalf("explained volume: %+v", as)
	}
	// Nurse n2 opens 30 of them and 4 strangers per hour all day: too
	// few strangers an hour for browsing, a day of volume.
	for h := range 8 {
		for i := range 4 {
			at := t0.Add(time.Duration(h)*time.Hour + time.Duration(i*13)*time.Minute)
			evs = append(evs, access(at, "Practitioner/n2", fmt.Sprintf("Patient/p%d", 200+h*4+i)))
		}
	}
	sortByTime(evs)
	as := run(ward(8), evs...)
	if len(as) != 1 || as[0].Category != CatVolume || as[0].User != "Practitioner/n2" || len(as[0].Patients) != 32 {
		t.Fatalf("volume: %+v", as)
	}
}

func TestBulk(t *testing.T) {
	d := ward(2)
	var evs []Event
	for i := range 40 {
		ev := access(t0.Add(time.Duration(i)*time.Second), doc, fmt.Sprintf("Patient/p%d", i))
		ev.Action = "export"
		evs = append(evs, ev)
	}
	as := run(d, evs...)
	if len(as) != 1 || as[0].Category != CatBulk || len(as[0].Patients) != 40 {
		t.Fatalf("bulk: %+v", as)
	}
	// A user who exports 40 patients every day does what they always do.
	var daily []Event
	for day := range 8 {
		for i := range 40 {
			ev := access(t0.Add(time.Duration(day)*24*time.Hour+time.Duration(i)*time.Second), doc, fmt.Sprintf("Patient/p%d", i))
			ev.Action = "export"
			daily = append(daily, ev)
		}
	}
	e := NewEngine(d, Options{Source: "test"})
	for i, ev := range daily {
		e.Add(ev)
		if i == 40*6-1 {
			e.Alerts(false) // the first six days may alert
		}
	}
	if as := e.Alerts(true); len(as) != 0 {
		t.Fatalf("usual daily export: %+v", as)
	}
	// A couple of exports are not bulk.
	if as := run(d, evs[:2]...); len(as) != 0 {
		t.Fatalf("two exports: %+v", as)
	}
}

func TestRobustBaseline(t *testing.T) {
	vals := []float64{4, 5, 6, 5, 4, 5, 6, 5}
	b, _ := robust(vals, nil)
	if !b.ok || b.z(5) != 0 {
		t.Fatalf("median: %+v", b)
	}
	if b.z(30) < 3.5 {
		t.Fatalf("outlier z %v", b.z(30))
	}
	if b, _ := robust(vals[:3], nil); b.ok {
		t.Fatal("too few values")
	}
	// All zeros: the Poisson floor keeps the scale at 1.
	if b, _ := robust(make([]float64, 10), nil); b.z(3) != 3 {
		t.Fatalf("floor: %v", b.z(3))
	}
	// A wide spread: the MAD, not the floor, sets the scale.
	b, _ = robust([]float64{10, 20, 30, 40, 50, 60, 70}, nil)
	if got := b.z(40 + 20/0.6745*3.5); got < 3.49 || got > 3.51 {
		t.Fatalf("MAD scale: %v", got)
	}
}

// The patients of a burst that runs past the hour reach the officer
// with the next call, not at the end of the day.
func TestBurstAcrossTheHourIsListedAtOnce(t *testing.T) {
	evs := routine(8, 8)
	for i := range 23 { // 20 before 06:00, 3 after
		evs = append(evs, access(t0.Add(5*time.Hour+40*time.Minute+time.Duration(i)*60*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
	}
	sortByTime(evs)
	e := NewEngine(ward(8), Options{Source: "test"})
	var last []Alert
	for _, ev := range evs {
		e.Add(ev)
		if ev.Time.Before(t0.Add(6*time.Hour + 10*time.Minute)) {
			if as := e.Alerts(false); len(as) > 0 {
				last = as
			}
		}
	}
	if len(last) != 1 || len(last[0].Patients) != 23 {
		t.Fatalf("by 06:10: %+v", last)
	}
}

// An export of strangers' records is a browsing burst and a volume spike
// too; the incident is named bulk, for the patients read in bulk.
func TestBulkOfStrangersIsNamedBulk(t *testing.T) {
	evs := routine(8, 8)
	for i := range 60 {
		ev := access(t0.Add(5*time.Hour+time.Duration(i)*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i))
		ev.Action = "export"
		evs = append(evs, ev)
	}
	sortByTime(evs)
	as := run(ward(8), evs...)
	if len(as) != 1 {
		t.Fatalf("want one incident, got %+v", as)
	}
	if a := as[0]; a.Category != CatBulk || len(a.Patients) != 60 || !slices.Contains(a.Categories, CatBrowsing) {
		t.Fatalf("incident: %s %v %d patients", a.Category, a.Categories, len(a.Patients))
	}
	// A burst of charts opened one by one stays browsing though the day
	// also holds a small export, which gets an alert of its own.
	evs = routine(8, 8)
	for i := range 25 {
		evs = append(evs, access(t0.Add(5*time.Hour+time.Duration(i)*48*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
	}
	for i := range 8 {
		ev := access(t0.Add(6*time.Hour+time.Duration(i)*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 300+i))
		ev.Action = "export"
		evs = append(evs, ev)
	}
	sortByTime(evs)
	as = run(ward(8), evs...)
	slices.SortFunc(as, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) })
	if len(as) != 2 || as[0].Category != CatBrowsing || len(as[0].Patients) != 25 ||
		as[1].Category != CatBulk || len(as[1].Patients) != 8 || as[1].Key != as[0].Key+"|bulk" {
		t.Fatalf("browsing with a small export: %+v", as)
	}
}

// A break-the-glass grant explains one chart, not fifteen strangers'
// in an hour.
func TestBreakTheGlassBurst(t *testing.T) {
	glass := func(evs []Event, n int) []Event {
		for i := range n {
			ev := access(t0.Add(5*time.Hour+time.Duration(i)*2*time.Minute), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i))
			ev.BreakGlass = true
			evs = append(evs, ev)
		}
		sortByTime(evs)
		return evs
	}
	as := run(ward(8), glass(routine(8, 8), 15)...)
	if len(as) != 1 {
		t.Fatalf("want one incident, got %+v", as)
	}
	a := as[0]
	if a.Category != CatBrowsing || a.User != "Practitioner/n0" || len(a.Patients) != 15 || a.Score < HighScore {
		t.Fatalf("incident: %s %v %d patients score %v", a.Category, a.Categories, len(a.Patients), a.Score)
	}
	want := "15 patients opened under break-the-glass in one hour"
	if !strings.Contains(a.Explanation, want) || !strings.Contains(a.Evidence.Signals[0].Detail, want) {
		t.Fatalf("explanation %q signals %+v", a.Explanation, a.Evidence.Signals)
	}
	// One or two emergencies under break-the-glass are no pattern.
	if as := run(ward(8), glass(routine(8, 8), 2)...); len(as) != 0 {
		t.Fatalf("two break-the-glass accesses: %+v", as)
	}
	// A grant naming the user (a Consent) counts the same.
	d := ward(8)
	evs := routine(8, 8)
	for i := range 15 {
		p := fmt.Sprintf("Patient/p%d", 200+i)
		d.Relations[p] = []Relation{{Kind: RelBreakGlass, Ref: "Consent/" + p, Participants: []string{"Practitioner/n0"},
			Start: t0.Add(5 * time.Hour), End: t0.Add(7 * time.Hour)}}
		evs = append(evs, access(t0.Add(5*time.Hour+time.Duration(i)*2*time.Minute+time.Second), "Practitioner/n0", p))
	}
	sortByTime(evs)
	if as := run(d, evs...); len(as) != 1 || !strings.Contains(as[0].Explanation, want) {
		t.Fatalf("grants naming the user: %+v", as)
	}
}

// The headline, the detector's signal and the listed accesses agree: a
// saturated burst reports its final size, and the evidence holds one
// access per patient, not the many writes of the first chart.
func TestIncidentHeadlineMatchesSignal(t *testing.T) {
	evs := routine(8, 8)
	for i := range 25 {
		for k := range 30 {
			evs = append(evs, access(t0.Add(5*time.Hour+time.Duration(i)*time.Minute+time.Duration(k)*time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
		}
	}
	sortByTime(evs)
	as := run(ward(8), evs...)
	if len(as) != 1 {
		t.Fatalf("want one incident, got %+v", as)
	}
	a := as[0]
	if !strings.Contains(a.Explanation, "25 patients in one hour have no care") {
		t.Fatalf("explanation %q", a.Explanation)
	}
	for _, s := range a.Evidence.Signals {
		if s.Detector == string(CatBrowsing) && !strings.HasPrefix(s.Detail, "25 patients") {
			t.Fatalf("browsing signal %q", s.Detail)
		}
	}
	seen := map[string]bool{}
	for _, x := range a.Evidence.Accesses {
		if seen[x.Patient] {
			t.Fatalf("evidence lists %s twice: %+v", x.Patient, a.Evidence.Accesses)
		}
		seen[x.Patient] = true
	}
	if len(seen) < 20 {
		t.Fatalf("evidence covers %d patients", len(seen))
	}
}

// A shift of strangers, a few an hour, is volume, though one of its
// hours is also a small browsing burst.
func TestShiftOfStrangersIsNamedVolume(t *testing.T) {
	evs := routine(8, 12)
	for i := range 40 {
		evs = append(evs, access(t0.Add(2*time.Hour+time.Duration(i)*13*time.Minute), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 200+i)))
	}
	for i := range 8 { // one busier hour
		evs = append(evs, access(t0.Add(3*time.Hour+time.Duration(i)*5*time.Minute+time.Second), "Practitioner/n0", fmt.Sprintf("Patient/p%d", 300+i)))
	}
	sortByTime(evs)
	e := NewEngine(ward(8), Options{Source: "test"})
	for _, ev := range evs {
		e.Add(ev)
	}
	e.Add(access(t0.Add(24*time.Hour), "Practitioner/n1", "Patient/p1")) // close the day
	as := e.Alerts(true)
	var inc *Alert
	for i := range as {
		if as[i].User == "Practitioner/n0" && len(as[i].Patients) > 1 {
			inc = &as[i]
		}
	}
	if inc == nil || inc.Category != CatVolume || len(inc.Patients) < 40 {
		t.Fatalf("incident: %+v", as)
	}
}
