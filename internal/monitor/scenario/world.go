package scenario

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Role codes. doctor, nurse and pharmacist are codes of
// http://terminology.hl7.org/CodeSystem/practitioner-role; the others
// have no code there and use [SystemRole].
const (
	roleDoctor       = "doctor"
	roleNurse        = "nurse"
	rolePharmacist   = "pharmacist"
	roleLab          = "lab"
	roleRadiology    = "radiology"
	roleBilling      = "billing"
	roleRegistration = "registration"
)

// Code systems of the context.
const (
	SystemPractitionerRole = "http://terminology.hl7.org/CodeSystem/practitioner-role"
	// SystemRole holds the role codes practitioner-role lacks (lab,
	// radiology, billing, registration).
	SystemRole = "https://phivault.dev/fhir/CodeSystem/synth-role"
)

func roleSystem(code string) string {
	switch code {
	case roleDoctor, roleNurse, rolePharmacist:
		return SystemPractitionerRole
	}
	return SystemRole
}

type orgKind uint8

const (
	orgRoot orgKind = iota
	orgClinical
	orgUnit
	orgService
)

type org struct {
	id, name string
	kind     orgKind
	parent   int // index, -1 for the hospital
	role     string
}

type address struct{ line, city, postal string }

type shift struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes since midnight; end <= start wraps
}

type practitioner struct {
	id, family, given, gender, birth, login string
	addr                                    address
	role                                    string
	org                                     int // the role's organization
	dept                                    int // its department (org itself, or the unit's parent)
	shifts                                  []shift
	patient                                 int // own Patient record, or -1
	stations                                []string
}

type patient struct {
	id, family, given, gender, birth string
	addr                             address
	label                            string // "", "V" or "R"
	prac                             int    // the workforce member this is, or -1
	quiet                            bool   // kept without encounters: a misuse target
	encs                             []int32
}

type participant struct {
	prac       int
	typ        string // v3-ParticipationType: ATND, PPRF, ADM, PART
	start, end time.Time
}

type encounter struct {
	id         string
	patient    int
	class      string // AMB, EMER, IMP
	org        int    // serviceProvider
	start, end time.Time
	parts      []participant
	team       []participant // CareTeam members (inpatient stays)
	srs        []int32
	billDay    int // the day a billing clerk works its Account
	billAt     time.Time
}

type serviceRequest struct {
	id       string
	enc      int
	perfType string
	perfOrg  int
	authored time.Time
}

// world is the hospital: its directory and care relationships.
type world struct {
	o        Options
	orgs     []org
	pracs    []practitioner
	pats     []patient
	encs     []encounter
	srs      []serviceRequest
	encByDay [][]int32 // encounters overlapping each day
	srByDay  [][]int32
	billDay  [][]int32
	byOrg    map[int][]int // practitioners by role organization
	byRole   map[string][]int
}

// minPractitioners staffs every department: two doctors per clinical
// department, four nurses per unit, three staff per service department.
const minPractitioners = 70

func (w *world) day(d int) time.Time { return w.o.Start.AddDate(0, 0, d) }

func (w *world) dayOf(t time.Time) int { return int(t.Sub(w.o.Start) / (24 * time.Hour)) }

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// zipf draws an index in [0,n) with probability falling as 1/(i+1)^0.9.
func zipf(r *rand.Rand, n int) int {
	// Inverse-CDF of a continuous power law, good enough for names.
	u := r.Float64()
	x := int(float64(n) * u * u * u)
	if x >= n {
		x = n - 1
	}
	return x
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (w *world) buildOrgs() {
	w.orgs = []org{{id: "hospital", name: "Riverton General Hospital", kind: orgRoot, parent: -1}}
	add := func(id, name string, kind orgKind, parent int, role string) int {
		w.orgs = append(w.orgs, org{id: id, name: name, kind: kind, parent: parent, role: role})
		return len(w.orgs) - 1
	}
	clinical := []struct {
		id, name string
		units    []string
	}{
		{"emergency", "Emergency Department", []string{"ed"}},
		{"internal-medicine", "Internal Medicine", []string{"im-3a", "im-3b"}},
		{"surgery", "Surgery", []string{"sur-4a"}},
		{"cardiology", "Cardiology", []string{"car-5a"}},
		{"pediatrics", "Pediatrics", []string{"ped-2a"}},
		{"obstetrics", "Obstetrics", []string{"obs-2b"}},
		{"oncology", "Oncology", []string{"onc-6a"}},
	}
	for _, c := range clinical {
		d := add(c.id, c.name, orgClinical, 0, roleDoctor)
		for _, u := range c.units {
			add(u, c.name+" unit "+u, orgUnit, d, roleNurse)
		}
	}
	add("laboratory", "Laboratory", orgService, 0, roleLab)
	add("radiology", "Radiology", orgService, 0, roleRadiology)
	add("pharmacy", "Pharmacy", orgService, 0, rolePharmacist)
	add("billing", "Patient Accounts", orgService, 0, roleBilling)
	add("registration", "Admissions and Registration", orgService, 0, roleRegistration)
}

func (w *world) orgsOf(kind orgKind) []int {
	var out []int
	for i, o := range w.orgs {
		if o.kind == kind {
			out = append(out, i)
		}
	}
	return out
}

func (w *world) orgByID(id string) int {
	for i, o := range w.orgs {
		if o.id == id {
			return i
		}
	}
	panic("scenario: no organization " + id)
}

var (
	dayShift     = [2]int{7 * 60, 15 * 60}
	eveningShift = [2]int{15 * 60, 23 * 60}
	nightShift   = [2]int{23 * 60, 7 * 60}
)

func weekdays(from, n int) [7]bool {
	var d [7]bool
	for i := range n {
		d[(from+i)%7] = true
	}
	return d
}

func (w *world) randomAddress(r *rand.Rand) address {
	nStreets := max(20, w.o.Patients/25)
	prefixes := []string{"", "North ", "South ", "East ", "West ", "Old ", "New ", "Upper "}
	s := r.IntN(nStreets)
	name := prefixes[(s/len(streetNames))%len(prefixes)] + streetNames[s%len(streetNames)]
	city := cities[(s/(len(streetNames)*len(prefixes)))%len(cities)]
	return address{
		line:   fmt.Sprintf("%d %s", 1+r.IntN(180), name),
		city:   city,
		postal: fmt.Sprintf("%05d", 10000+s/2),
	}
}

func randomName(r *rand.Rand) (family, given, gender string) {
	family = surnames[zipf(r, len(surnames))]
	if r.IntN(2) == 0 {
		return family, pick(r, givenFemale), "female"
	}
	return family, pick(r, givenMale), "male"
}

func birthDate(r *rand.Rand, from, to int) string {
	return fmt.Sprintf("%04d-%02d-%02d", from+r.IntN(to-from), 1+r.IntN(12), 1+r.IntN(28))
}

func (w *world) buildPractitioners(r *rand.Rand) {
	type slot struct {
		org  int
		role string
	}
	var slots []slot
	clin, units, svc := w.orgsOf(orgClinical), w.orgsOf(orgUnit), w.orgsOf(orgService)
	for _, c := range clin {
		slots = append(slots, slot{c, roleDoctor}, slot{c, roleDoctor})
	}
	for _, u := range units {
		for range 4 {
			slots = append(slots, slot{u, roleNurse})
		}
	}
	for _, s := range svc {
		for range 3 {
			slots = append(slots, slot{s, w.orgs[s].role})
		}
	}
	// The rest in proportion: doctors 20%, nurses 45%, the services 35%.
	for len(slots) < w.o.Practitioners {
		x := r.IntN(100)
		switch {
		case x < 20:
			slots = append(slots, slot{pick(r, clin), roleDoctor})
		case x < 65:
			slots = append(slots, slot{pick(r, units), roleNurse})
		default:
			s := pick(r, svc)
			slots = append(slots, slot{s, w.orgs[s].role})
		}
	}
	w.byOrg = map[int][]int{}
	w.byRole = map[string][]int{}
	for i, s := range slots[:w.o.Practitioners] {
		family, given, gender := randomName(r)
		p := practitioner{
			id: fmt.Sprintf("pr%d", i+1), family: family, given: given, gender: gender,
			birth: birthDate(r, 1960, 2001), addr: w.randomAddress(r),
			role: s.role, org: s.org, dept: s.org, patient: -1,
			login: fmt.Sprintf("%c.%s%d", given[0]|0x20, asciiLower(family), i+1),
		}
		if w.orgs[s.org].kind == orgUnit {
			p.dept = w.orgs[s.org].parent
		}
		k := len(w.byOrg[s.org]) // position in the org: rotates shifts
		p.shifts = w.roster(s.role, s.org, k)
		for j := range 1 + r.IntN(3) {
			p.stations = append(p.stations, fmt.Sprintf("10.%d.%d.%d", 10+s.org, 1+(i+j)%200, 10+r.IntN(240)))
		}
		w.pracs = append(w.pracs, p)
		w.byOrg[s.org] = append(w.byOrg[s.org], i)
		w.byRole[s.role] = append(w.byRole[s.role], i)
	}
}

func asciiLower(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c|0x20)
		case c >= 'a' && c <= 'z':
			b = append(b, c)
		}
	}
	return string(b)
}

// roster gives the k-th member of an organization their weekly shifts:
// shift workers rotate day, evening and night and work five consecutive
// days from a staggered start, so that every hour of the week is staffed.
func (w *world) roster(role string, o, k int) []shift {
	switch {
	case role == roleDoctor && w.orgs[o].id == "emergency":
		h := [2]int{7 * 60, 19 * 60}
		if k%2 == 1 {
			h = [2]int{19 * 60, 7 * 60}
		}
		return []shift{{days: weekdays((k/2*2)%7, 4), start: h[0], end: h[1]}}
	case role == roleDoctor:
		return []shift{{days: weekdays(1, 5), start: 8 * 60, end: 18 * 60}}
	case role == roleBilling:
		return []shift{{days: weekdays(1, 5), start: 8 * 60, end: 17 * 60}}
	}
	h := [][2]int{dayShift, eveningShift, nightShift}[k%3]
	return []shift{{days: weekdays((2*k)%7, 5), start: h[0], end: h[1]}}
}

// onShift reports whether t falls in one of p's rostered shifts,
// extended by grace after its end.
func (w *world) onShift(p int, t time.Time, grace time.Duration) bool {
	m := t.Hour()*60 + t.Minute()
	g := int(grace / time.Minute)
	wd := int(t.Weekday())
	prev := (wd + 6) % 7
	for _, s := range w.pracs[p].shifts {
		if s.start < s.end {
			if s.days[wd] && m >= s.start && m < s.end+g {
				return true
			}
			continue
		}
		if s.days[wd] && m >= s.start {
			return true
		}
		if s.days[prev] && m < s.end+g {
			return true
		}
	}
	return false
}

// shiftWindows returns the shifts of p that start on day d.
func (w *world) shiftWindows(p, d int) [][2]time.Time {
	base := w.day(d)
	wd := int(base.Weekday())
	var out [][2]time.Time
	for _, s := range w.pracs[p].shifts {
		if !s.days[wd] {
			continue
		}
		from := base.Add(time.Duration(s.start) * time.Minute)
		to := base.Add(time.Duration(s.end) * time.Minute)
		if s.end <= s.start {
			to = to.Add(24 * time.Hour)
		}
		out = append(out, [2]time.Time{from, to})
	}
	return out
}

// onShiftAmong returns the members of org o with role on shift at t.
func (w *world) onShiftAmong(o int, t time.Time) []int {
	var out []int
	for _, p := range w.byOrg[o] {
		if w.onShift(p, t, 0) {
			out = append(out, p)
		}
	}
	return out
}

// staff picks a member of o on shift at t, or any member if nobody is.
func (w *world) staff(r *rand.Rand, o int, t time.Time) int {
	if on := w.onShiftAmong(o, t); len(on) > 0 {
		return pick(r, on)
	}
	return pick(r, w.byOrg[o])
}
