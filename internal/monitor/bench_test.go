package monitor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchHospital is a 500-bed-like hospital: 40 departments, 2,000
// practitioners on day or night shifts, 50,000 patients with an
// encounter each, and a day of accesses mostly explained.
func benchHospital(events int) (*Directory, []Event) {
	r := rand.New(rand.NewPCG(1, 2))
	d := NewDirectory()
	d.Departments["Organization/root"] = Department{Ref: "Organization/root"}
	for i := range 40 {
		ref := fmt.Sprintf("Organization/d%d", i)
		d.Departments[ref] = Department{Ref: ref, PartOf: "Organization/root"}
	}
	users := make([]string, 2000)
	for i := range users {
		ref := fmt.Sprintf("Practitioner/u%d", i)
		users[i] = ref
		sh := Shift{Start: 7 * time.Hour, End: 19 * time.Hour}
		if i%3 == 0 {
			sh = Shift{Start: 19 * time.Hour, End: 7 * time.Hour}
		}
		d.Practitioners[ref] = &Person{Ref: ref, Family: fmt.Sprintf("Fam%d", i), Given: []string{"G"}, BirthDate: "1980-01-01",
			Addresses: []Address{{Line: fmt.Sprintf("%d Main Street", i), PostalCode: fmt.Sprintf("%04d", i%500)}},
			Roles:     []Role{{Organization: fmt.Sprintf("Organization/d%d", i%40), Codes: []string{[]string{"nurse", "doctor"}[i%2]}, Shifts: []Shift{sh}}}}
	}
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	patients := make([]string, 50000)
	for i := range patients {
		ref := fmt.Sprintf("Patient/p%d", i)
		patients[i] = ref
		d.Patients[ref] = &PatientInfo{Ref: ref, Family: fmt.Sprintf("Pat%d", i), Given: []string{"P"}, BirthDate: "1970-01-01",
			Addresses: []Address{{Line: fmt.Sprintf("%d Side Road", i), PostalCode: fmt.Sprintf("%04d", i%500)}}}
		d.Relations[ref] = []Relation{{Kind: RelEncounter, Ref: fmt.Sprintf("Encounter/e%d", i),
			Organizations: []string{fmt.Sprintf("Organization/d%d", i%40)}, Participants: []string{users[i%2000]},
			Start: start.Add(-72 * time.Hour), End: start.Add(72 * time.Hour)}}
	}
	evs := make([]Event, events)
	step := 24 * time.Hour / time.Duration(events)
	for i := range evs {
		at := start.Add(time.Duration(i) * step)
		// A user on shift: day shift users are those with u%3 != 0.
		u := r.IntN(len(users))
		if day := at.Hour() >= 7 && at.Hour() < 19; day == (u%3 == 0) {
			u = (u + 1) % len(users)
			if u%3 == 0 {
				u = (u + 1) % len(users)
			}
			if !day {
				u = u / 3 * 3
			}
		}
		// Mostly a patient of the user's department (i%40 == u%40).
		p := r.IntN(len(patients)/40)*40 + u%40
		if r.IntN(50) == 0 {
			p = r.IntN(len(patients))
		}
		evs[i] = Event{Time: start.Add(time.Duration(i) * step), Kind: KindAccess, Outcome: OutcomeSuccess, User: users[u],
			Patient: patients[p], Action: "read", Address: "10.0.0.1", Session: users[u], Ref: "AuditEvent/x"}
		if r.IntN(200) == 0 {
			evs[i] = Event{Time: evs[i].Time, Kind: KindLogin, Outcome: OutcomeFailure, Login: "x", Address: fmt.Sprintf("10.1.0.%d", r.IntN(250))}
		}
	}
	return d, evs
}

func BenchmarkEngine(b *testing.B) {
	const n = 200_000
	d, evs := benchHospital(n)
	b.ReportAllocs()
	b.ResetTimer()
	alerts := 0
	for range b.N {
		e := NewEngine(d, Options{Source: "bench"})
		for i := range evs {
			e.Add(evs[i])
		}
		alerts = len(e.Alerts(true))
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(alerts), "alerts")
}
