package scenario

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// RNG streams: each part of the scenario draws from its own stream, so
// that a change to one part leaves the others as they were.
const (
	streamDirectory uint64 = iota + 1
	streamPatients
	streamEncounters
	streamIncidents
	streamDays = 1 << 32 // + day number
)

func (w *world) buildPatients(r *rand.Rand) {
	n := w.o.Patients
	w.pats = make([]patient, 0, n)
	add := func(p patient) int {
		p.id = fmt.Sprintf("pt%d", len(w.pats)+1)
		p.prac = -1 + p.prac // callers pass prac+1 (0: none)
		w.pats = append(w.pats, p)
		return len(w.pats) - 1
	}
	// Workforce members who are patients here too (about one in four):
	// same name, birth date and address as their Practitioner.
	for i := range w.pracs {
		if r.IntN(4) != 0 {
			continue
		}
		pr := &w.pracs[i]
		pr.patient = add(patient{family: pr.family, given: pr.given, gender: pr.gender, birth: pr.birth,
			addr: pr.addr, prac: i + 1, quiet: r.IntN(2) == 0})
	}
	// Family of workforce members (same surname and address) and
	// neighbours (same street, another house, another surname).
	for i := range w.pracs {
		pr := w.pracs[i]
		if r.IntN(5) == 0 {
			for range 1 + r.IntN(2) {
				_, given, gender := randomName(r)
				add(patient{family: pr.family, given: given, gender: gender, birth: birthDate(r, 1940, 2024),
					addr: pr.addr, quiet: r.IntN(2) == 0})
			}
		}
		if r.IntN(5) == 0 {
			family, given, gender := randomName(r)
			for family == pr.family {
				family, given, gender = randomName(r)
			}
			a := pr.addr
			a.line = fmt.Sprintf("%d%s", 1+r.IntN(180), a.line[indexSpace(a.line):])
			add(patient{family: family, given: given, gender: gender, birth: birthDate(r, 1940, 2024),
				addr: a, quiet: r.IntN(2) == 0})
		}
	}
	for len(w.pats) < n {
		family, given, gender := randomName(r)
		add(patient{family: family, given: given, gender: gender, birth: birthDate(r, 1930, 2025),
			addr: w.randomAddress(r), quiet: r.IntN(40) == 0})
	}
	w.pats = w.pats[:n]
	for i := range w.pracs {
		if w.pracs[i].patient >= n {
			w.pracs[i].patient = -1
		}
	}
	// VIP (V, very restricted) and restricted (R) records, about 2%.
	for i := range w.pats {
		if w.pats[i].prac >= 0 {
			continue
		}
		switch r.IntN(100) {
		case 0:
			w.pats[i].label = "V"
		case 1:
			w.pats[i].label = "R"
		}
	}
}

func indexSpace(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return i
		}
	}
	return 0
}

// buildEncounters schedules the hospital's activity: emergency visits
// at any hour (a quarter admitted), clinic visits on weekdays, elective
// admissions, with orders to the laboratory, radiology and pharmacy,
// consults from other departments, an Account per encounter, and
// nurses covering a shift on another unit outside their roster.
func (w *world) buildEncounters(r *rand.Rand) {
	nDays := w.o.Days
	w.encByDay = make([][]int32, nDays+8)
	w.srByDay = make([][]int32, nDays+8)
	w.billDay = make([][]int32, nDays+8)
	ed := w.orgByID("emergency")
	edUnit := w.orgByID("ed")
	reg := w.orgByID("registration")
	clin := w.orgsOf(orgClinical)
	var units []int
	for _, u := range w.orgsOf(orgUnit) {
		if u != edUnit {
			units = append(units, u)
		}
	}
	// workforce patients by the department they work in, for the
	// colleague-treats-colleague noise.
	wfByDept := map[int][]int{}
	var active []int
	for i, p := range w.pats {
		if p.quiet {
			continue
		}
		active = append(active, i)
		if p.prac >= 0 {
			d := w.pracs[p.prac].dept
			wfByDept[d] = append(wfByDept[d], i)
		}
	}
	choosePatient := func(dept int) int {
		if l := wfByDept[dept]; len(l) > 0 && r.IntN(30) == 0 {
			return pick(r, l)
		}
		return pick(r, active)
	}
	np := w.o.Practitioners
	// A mass-casualty evening: three times the emergency arrivals in six
	// hours, all of them explained; a volume detector that ignores
	// explanations flags the whole ED.
	surge := nDays/3 + r.IntN(nDays-nDays/3)
	for d := range nDays {
		base := w.day(d)
		wd := base.Weekday()
		weekday := wd != time.Saturday && wd != time.Sunday
		arrivals := poissonish(r, float64(np)*0.45)
		if d == surge {
			arrivals *= 3
		}
		// Emergency visits.
		for k := range arrivals {
			start := base.Add(time.Duration(r.IntN(24*60)) * time.Minute)
			if d == surge && k%3 != 0 {
				start = base.Add(time.Duration(16*60+r.IntN(6*60)) * time.Minute)
			}
			end := start.Add(time.Duration(90+r.IntN(360)) * time.Minute)
			e := w.addEncounter(choosePatient(ed), "EMER", edUnit, start, end)
			w.encs[e].parts = []participant{
				{prac: w.staff(r, reg, start), typ: "ADM"},
				{prac: w.staff(r, ed, start), typ: "ATND"},
				{prac: w.staff(r, edUnit, start), typ: "PART"},
			}
			w.order(r, e, "laboratory", start.Add(20*time.Minute), 70)
			w.order(r, e, "radiology", start.Add(40*time.Minute), 40)
			if r.IntN(4) == 0 {
				u := pick(r, units)
				w.admit(r, w.encs[e].patient, u, end, 1+r.IntN(5))
			}
		}
		if weekday {
			for range poissonish(r, float64(np)*0.8) {
				dept := pick(r, clin)
				if dept == ed {
					continue
				}
				start := base.Add(time.Duration(8*60+r.IntN(9*60)) * time.Minute)
				end := start.Add(time.Duration(20+r.IntN(30)) * time.Minute)
				e := w.addEncounter(choosePatient(dept), "AMB", dept, start, end)
				w.encs[e].parts = []participant{{prac: w.staff(r, dept, start), typ: "ATND"}}
				w.order(r, e, "laboratory", end, 30)
			}
			for range poissonish(r, float64(np)*0.08) {
				u := pick(r, units)
				start := base.Add(time.Duration(8*60+r.IntN(4*60)) * time.Minute)
				w.admit(r, choosePatient(w.orgs[u].parent), u, start, 1+r.IntN(6))
			}
		}
	}
}

// admit adds an inpatient stay on unit u with its CareTeam, daily
// orders, a consult now and then, and now and then a nurse from another
// unit covering a shift outside her roster (named on the encounter or
// the care team for that shift).
func (w *world) admit(r *rand.Rand, pat, u int, start time.Time, days int) {
	dept := w.orgs[u].parent
	end := start.Add(time.Duration(days*24-6+r.IntN(10)) * time.Hour)
	e := w.addEncounter(pat, "IMP", u, start, end)
	att := pick(r, w.byOrg[dept])
	w.encs[e].parts = []participant{{prac: att, typ: "ATND"}}
	nurses := w.byOrg[u]
	w.encs[e].team = []participant{{prac: att, typ: "ATND"}, {prac: pick(r, nurses), typ: "PART"}, {prac: pick(r, nurses), typ: "PART"}}
	for t := start; t.Before(end); t = t.Add(24 * time.Hour) {
		w.order(r, e, "laboratory", t.Add(2*time.Hour), 60)
		w.order(r, e, "radiology", t.Add(3*time.Hour), 15)
		w.order(r, e, "pharmacy", t.Add(time.Hour), 70)
		if r.IntN(40) == 0 { // a covering nurse from another unit
			var others []int
			for _, n := range w.byRole[roleNurse] {
				if w.pracs[n].org != u {
					others = append(others, n)
				}
			}
			from := t.Truncate(24 * time.Hour).Add(time.Duration(pick(r, []int{7, 15, 23})) * time.Hour)
			to := from.Add(8 * time.Hour)
			var off []int
			for _, n := range others {
				if !w.onShift(n, from, 0) && !w.onShift(n, to.Add(-time.Minute), 0) {
					off = append(off, n)
				}
			}
			if len(off) > 0 && from.After(start) && to.Before(end) {
				p := participant{prac: pick(r, off), typ: "PART", start: from, end: to}
				if r.IntN(2) == 0 {
					w.encs[e].parts = append(w.encs[e].parts, p)
				} else {
					w.encs[e].team = append(w.encs[e].team, p)
				}
			}
		}
	}
	if r.IntN(8) == 0 { // a consult from another clinical department
		var others []int
		for _, c := range w.orgsOf(orgClinical) {
			if c != dept && w.orgs[c].id != "emergency" {
				others = append(others, c)
			}
		}
		at := start.Add(time.Duration(2+r.IntN(20)) * time.Hour)
		w.addOrder(e, roleDoctor, pick(r, others), at)
	}
}

func (w *world) addEncounter(pat int, class string, o int, start, end time.Time) int {
	e := len(w.encs)
	enc := encounter{id: fmt.Sprintf("enc%d", e+1), patient: pat, class: class, org: o, start: start, end: end}
	// Billing works the Account one to four weekdays after discharge.
	bill := end.Add(time.Duration(24+int(end.Unix()%72)) * time.Hour).Truncate(24 * time.Hour)
	for bill.Weekday() == time.Saturday || bill.Weekday() == time.Sunday {
		bill = bill.Add(24 * time.Hour)
	}
	enc.billAt = bill.Add(time.Duration(8*60+int(end.Unix()%(8*60))) * time.Minute)
	enc.billDay = w.dayOf(enc.billAt)
	w.encs = append(w.encs, enc)
	w.pats[pat].encs = append(w.pats[pat].encs, int32(e))
	for d := max(0, w.dayOf(start)); d <= w.dayOf(end) && d < len(w.encByDay); d++ {
		w.encByDay[d] = append(w.encByDay[d], int32(e))
	}
	if enc.billDay >= 0 && enc.billDay < len(w.billDay) {
		w.billDay[enc.billDay] = append(w.billDay[enc.billDay], int32(e))
	}
	return e
}

// order adds, with probability pct%, an order to a service department.
func (w *world) order(r *rand.Rand, e int, dept string, at time.Time, pct int) {
	if r.IntN(100) >= pct || at.After(w.encs[e].end) {
		return
	}
	o := w.orgByID(dept)
	w.addOrder(e, w.orgs[o].role, o, at)
}

func (w *world) addOrder(e int, perfType string, o int, at time.Time) {
	s := len(w.srs)
	w.srs = append(w.srs, serviceRequest{id: fmt.Sprintf("sr%d", s+1), enc: e, perfType: perfType, perfOrg: o, authored: at})
	w.encs[e].srs = append(w.encs[e].srs, int32(s))
	if d := w.dayOf(at); d >= 0 && d < len(w.srByDay) {
		w.srByDay[d] = append(w.srByDay[d], int32(s))
	}
}

// poissonish draws a count around mean (a binomial-like spread).
func poissonish(r *rand.Rand, mean float64) int {
	n := int(mean*(0.7+0.6*r.Float64()) + 0.5)
	return max(n, 0)
}

// related reports whether any relationship in the data could explain an
// access of practitioner u to patient p at any time: u takes part in one
// of p's encounters or care teams, p has an encounter with u's
// organization or department, or an order to it; a billing clerk is
// related to every patient with an encounter. Misuse targets are chosen
// among unrelated pairs, so that the ground truth is never explainable.
func (w *world) related(u, p int) bool {
	pr := w.pracs[u]
	if pr.role == roleBilling && len(w.pats[p].encs) > 0 {
		return true
	}
	for _, ei := range w.pats[p].encs {
		e := w.encs[ei]
		if e.org == pr.org || e.org == pr.dept || w.orgs[e.org].parent == pr.dept {
			return true
		}
		for _, pp := range append(append([]participant(nil), e.parts...), e.team...) {
			if pp.prac == u {
				return true
			}
		}
		for _, si := range e.srs {
			if o := w.srs[si].perfOrg; o == pr.org || o == pr.dept {
				return true
			}
		}
	}
	return false
}
