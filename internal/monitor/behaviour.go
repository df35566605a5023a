package monitor

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Behaviour findings: a user's accesses over an hour or a day. Volume
// is the number of distinct patients in the window against the user's
// own past windows and their peers' (same role code and department);
// browsing is the number of distinct unexplained patients in an hour
// against the peers (a patient opened only under break-the-glass counts
// as unexplained here: the grant is the user's own word for one chart,
// and many of them in an hour is itself the pattern); bulk is the patients read through exports and
// bulk reads in the day. Findings of one user on one day make one
// incident alert, keyed by user and day, listing each patient it
// covers.

// Baseline sizes: the rings hold the last windows in which the user (or
// a peer) was active.
const (
	ownHours      = 24 * 14 // two weeks of active hours
	ownDays       = 30
	peerWindows   = 512
	maxWindowSize = 5000 // distinct patients tracked per user window; more are counted, not kept
)

// Patient flags in a window.
const (
	flagUnexplained uint8 = 1 << iota
	flagOffHours
	flagBulk
	flagGlass // explained only by a break-the-glass grant
)

type window struct {
	n           int // distinct patients (overflow counted)
	patients    map[string]uint8
	unexplained int
	offHours    int
	bulk        int
	glass       int         // of the unexplained, opened under break-the-glass only
	accesses    []AccessRef // the first unexplained or bulk access of each patient, capped
}

func (w *window) reset() {
	w.n, w.unexplained, w.offHours, w.bulk, w.glass = 0, 0, 0, 0, 0
	clear(w.patients)
	w.accesses = w.accesses[:0]
}

// add records a patient; it returns the flags newly set.
func (w *window) add(patient string, f uint8, max int) uint8 {
	if w.patients == nil {
		w.patients = map[string]uint8{}
	}
	old, ok := w.patients[patient]
	if !ok {
		if len(w.patients) >= max {
			w.n++
			return 0
		}
		w.n++
	}
	nf := f &^ old
	if nf == 0 && ok {
		return 0
	}
	w.patients[patient] = old | f
	if nf&flagUnexplained != 0 {
		w.unexplained++
	}
	if nf&flagOffHours != 0 {
		w.offHours++
	}
	if nf&flagBulk != 0 {
		w.bulk++
	}
	if nf&flagGlass != 0 {
		w.glass++
	}
	if !ok {
		return nf | 0x80 // new patient
	}
	return nf
}

func (e *Engine) baselineOf(r *ring) baseline {
	if r == nil {
		return baseline{}
	}
	var b baseline
	b, e.scratch = robust(r.v, e.scratch)
	return b
}

// group is a peer group's history.
type group struct {
	hour, day, browse    *ring
	bHour, bDay, bBrowse baseline
}

func newGroup() *group {
	return &group{hour: newRing(peerWindows), day: newRing(peerWindows), browse: newRing(peerWindows)}
}

type userState struct {
	groups   []string // peer group keys, most specific first
	lastSeen time.Time
	hour     window
	day      window
	active   bool // has accesses in the open hour
	ownHour  *ring
	ownDay   *ring
	ownBulk  *ring
	bHour    baseline
	bDay     baseline
	bBulk    baseline
	inc      *incident
}

// incident is a user's behaviour alert of one day.
type incident struct {
	day         time.Time
	lo          map[Category]float64
	sigs        map[Category]Signal
	sigN        map[Category]int
	patients    []string
	seen        map[string]bool
	accesses    []AccessRef
	hourMax     int // most distinct patients in an hour
	hourUsual   float64
	unexplained int // most unexplained patients in an hour
	glass       int // of them, opened under break-the-glass only
	offHours    int
	dayN        int
	dayUsual    float64
	bulk        int
	first, last time.Time
	listHour    uint8     // flags of the open hour's patients to list as they come (0x80: all)
	hitHour     time.Time // the last hour with a finding
}

func peerGroups(p *Person) []string {
	if p == nil {
		return []string{"?", "*"}
	}
	for _, r := range p.Roles {
		if len(r.Codes) > 0 {
			return []string{r.Codes[0] + "|" + r.Organization, r.Codes[0] + "|", "*"}
		}
	}
	return []string{"|" + firstOrg(p), "*"}
}

func firstOrg(p *Person) string {
	for _, r := range p.Roles {
		if r.Organization != "" {
			return r.Organization
		}
	}
	return ""
}

func (e *Engine) userOf(user string, p *Person) *userState {
	u := e.users[user]
	if u == nil {
		u = &userState{groups: peerGroups(p), ownHour: newRing(ownHours), ownDay: newRing(ownDays), ownBulk: newRing(ownDays)}
		e.users[user] = u
	}
	return u
}

// peer returns the most specific peer baseline with enough history.
func (e *Engine) peer(u *userState, pick func(*group) baseline) baseline {
	for _, k := range u.groups {
		if g := e.groups[k]; g != nil {
			if b := pick(g); b.ok {
				return b
			}
		}
	}
	return baseline{}
}

// behaviour accounts one access in the user's windows and scores the
// open hour as it grows.
func (e *Engine) behaviour(user string, p *Person, ev *Event, unexplained, glass, off bool) {
	u := e.userOf(user, p)
	u.lastSeen = ev.Time
	u.active = true
	var f uint8
	if unexplained {
		f |= flagUnexplained
		if off {
			f |= flagOffHours
		}
	}
	if glass {
		f |= flagUnexplained | flagGlass
	}
	if ev.Bulk || isBulkAction(ev.Action) {
		f |= flagBulk
	}
	nf := u.hour.add(ev.Patient, f, maxWindowSize)
	df := u.day.add(ev.Patient, f, maxWindowSize)
	if nf&(flagUnexplained|flagBulk) != 0 {
		// One access per patient: the evidence shows the breadth, not
		// the hundred writes of one chart.
		u.hour.accesses = appendCapped(u.hour.accesses, e.opt.MaxEvidence, accessRef(ev))
	}
	if nf == 0 && df == 0 {
		return
	}
	// A listed incident takes the new patient at once.
	if inc := u.inc; inc != nil && inc.day.Equal(e.dayStart) && inc.listHour != 0 {
		if (inc.listHour == 0x80 || inc.listHour&f != 0) && e.listPatient(inc, ev.Patient) {
			inc.last = ev.Time
			e.emitIncident(user, inc)
		}
	}
	// Score as the window grows, at milestones: every step while small,
	// every 64th after (the close scores the whole window anyway).
	if (nf&0x80 != 0 && milestone(u.hour.n)) || (nf&flagUnexplained != 0 && milestone(u.hour.unexplained)) ||
		(df&flagBulk != 0 && milestone(u.day.bulk)) {
		e.scoreHour(user, u, false)
	}
}

func milestone(n int) bool { return n < 64 || n%64 == 0 }

func isBulkAction(a string) bool {
	return a == "export" || a == "$everything" || a == "$export"
}

// listPatient adds a patient to an incident; false when it was there
// or the list is full.
func (e *Engine) listPatient(inc *incident, p string) bool {
	if inc.seen[p] || len(inc.patients) >= e.opt.MaxPatients {
		return false
	}
	inc.seen[p] = true
	inc.patients = append(inc.patients, p)
	return true
}

func (e *Engine) incidentOf(u *userState) *incident {
	if u.inc == nil || !u.inc.day.Equal(e.dayStart) {
		u.inc = &incident{day: e.dayStart, lo: map[Category]float64{}, sigs: map[Category]Signal{}, sigN: map[Category]int{}, seen: map[string]bool{}}
	}
	return u.inc
}

// scoreHour scores the user's open hour (and the day's bulk).
func (e *Engine) scoreHour(user string, u *userState, closing bool) {
	w := &e.w
	type finding struct {
		c    Category
		lo   float64
		sig  Signal
		list uint8
		n    int // the count the signal reports
	}
	var fs []finding
	// Volume: distinct patients this hour against own and peers.
	if pb, ob := e.peer(u, func(g *group) baseline { return g.bHour }), u.bHour; pb.ok || ob.ok {
		z, usual := e.minZ(float64(u.hour.n), pb, ob)
		if z >= w.ZCut {
			lo := w.VolumePerZ*(math.Min(z, w.ZMax)-w.ZCut) + w.VolumeExplained*explainedExcess(u.hour.n, u.hour.unexplained, usual)
			list := flagUnexplained
			if u.hour.unexplained == 0 {
				list = 0x80
			}
			fs = append(fs, finding{CatVolume, lo, Signal{Detector: string(CatVolume), Value: round(z), Weight: round(lo),
				Detail: fmt.Sprintf("%d patients in one hour, usually %.0f", u.hour.n, usual)}, list, u.hour.n})
			if inc := e.incidentOf(u); u.hour.n > inc.hourMax {
				inc.hourMax, inc.hourUsual = u.hour.n, usual
			}
		}
	}
	// Browsing: unexplained patients this hour against peers.
	if u.hour.unexplained >= w.BrowsingMin {
		pb := e.peer(u, func(g *group) baseline { return g.bBrowse })
		z := float64(u.hour.unexplained) // a zero baseline with the Poisson floor of 1
		if pb.ok {
			z = pb.z(float64(u.hour.unexplained))
		}
		if z >= w.ZCut {
			lo := w.BrowsingPerZ * (math.Min(z, w.ZMax) - w.ZCut)
			if 2*u.hour.offHours > u.hour.unexplained {
				lo += w.BrowsingOffHours
			}
			detail := fmt.Sprintf("%d patients without a care relation in one hour", u.hour.unexplained)
			if u.hour.glass > 0 {
				detail += fmt.Sprintf("; %d patients opened under break-the-glass in one hour", u.hour.glass)
			}
			fs = append(fs, finding{CatBrowsing, lo, Signal{Detector: string(CatBrowsing), Value: round(z), Weight: round(lo),
				Detail: detail}, flagUnexplained, u.hour.unexplained})
		}
	}
	// Bulk: patients read through exports and bulk reads today.
	if u.day.bulk > 0 {
		lo := w.BulkBias + w.BulkPerLog*math.Log(float64(u.day.bulk))
		if u.bBulk.ok && u.bBulk.z(float64(u.day.bulk)) < w.ZCut {
			lo += w.BulkUsual // the user's daily work (a registry, a quality team)
		}
		if lo >= 0 {
			fs = append(fs, finding{CatBulk, lo, Signal{Detector: string(CatBulk), Value: float64(u.day.bulk), Weight: round(lo),
				Detail: fmt.Sprintf("%d patients read in bulk or exported today", u.day.bulk)}, flagBulk, u.day.bulk})
		}
	}
	if len(fs) == 0 {
		return
	}
	inc := e.incidentOf(u)
	inc.hitHour = e.hourStart
	prevList := inc.listHour
	for _, f := range fs {
		inc.setSignal(f.c, f.lo, f.sig, f.n)
		if f.list != 0 && inc.listHour != 0x80 {
			if f.list == 0x80 {
				inc.listHour = 0x80
			} else {
				inc.listHour |= f.list
			}
		}
	}
	if u.hour.unexplained >= inc.unexplained {
		inc.unexplained, inc.glass = u.hour.unexplained, u.hour.glass
	}
	inc.offHours = max(inc.offHours, u.hour.offHours)
	inc.bulk = max(inc.bulk, u.day.bulk)
	if closing || inc.listHour != prevList {
		// Newly listed flags: take the window's patients once; later
		// ones are listed as they come (behaviour).
		for p, fl := range u.hour.patients {
			if inc.listHour == 0x80 || fl&inc.listHour != 0 {
				e.listPatient(inc, p)
			}
		}
	}
	if inc.listHour&flagBulk != 0 && (closing || prevList&flagBulk == 0) {
		for p, fl := range u.day.patients {
			if fl&flagBulk != 0 {
				e.listPatient(inc, p)
			}
		}
	}
	for _, a := range u.hour.accesses {
		if len(inc.accesses) >= e.opt.MaxEvidence {
			break
		}
		if !slices.Contains(inc.accesses, a) {
			inc.accesses = append(inc.accesses, a)
		}
	}
	if inc.first.IsZero() {
		inc.first = e.hourStart
	}
	inc.last = u.lastSeen
	e.emitIncident(user, inc)
}

// explainedExcess is the share of a spike (the patients above the usual
// count) that the unexplained patients do not account for: 0 when the
// unexplained patients are the whole excess, 1 when every access is
// explained.
func explainedExcess(n, unexplained int, usual float64) float64 {
	excess := float64(n) - usual
	if excess <= 0 {
		return 1
	}
	return 1 - math.Min(1, float64(unexplained)/excess)
}

// minZ is the z-score against the milder of the two baselines (a spike
// must be unusual for the user and for their peers), and the usual
// count it was measured from.
func (e *Engine) minZ(x float64, peer, own baseline) (float64, float64) {
	switch {
	case peer.ok && own.ok:
		zp, zo := peer.z(x), own.z(x)
		if zp < zo {
			return zp, peer.med
		}
		return zo, own.med
	case peer.ok:
		return peer.z(x), peer.med
	default:
		return own.z(x), own.med
	}
}

// scoreDay scores the user's day volume at the day's close.
func (e *Engine) scoreDay(user string, u *userState) {
	pb := e.peer(u, func(g *group) baseline { return g.bDay })
	if !pb.ok && !u.bDay.ok {
		return
	}
	z, usual := e.minZ(float64(u.day.n), pb, u.bDay)
	if z < e.w.ZCut {
		return
	}
	lo := e.w.VolumePerZ*(math.Min(z, e.w.ZMax)-e.w.ZCut) + e.w.VolumeExplained*explainedExcess(u.day.n, u.day.unexplained, usual)
	inc := e.incidentOf(u)
	inc.setSignal(CatVolume, lo, Signal{Detector: string(CatVolume), Value: round(z), Weight: round(lo),
		Detail: fmt.Sprintf("%d patients in the day, usually %.0f", u.day.n, usual)}, u.day.n)
	inc.dayN, inc.dayUsual = u.day.n, usual
	for p, fl := range u.day.patients {
		if u.day.unexplained == 0 || fl&flagUnexplained != 0 {
			e.listPatient(inc, p)
		}
	}
	if inc.first.IsZero() {
		inc.first = e.dayStart
	}
	inc.last = u.lastSeen
	e.emitIncident(user, inc)
}

// setSignal keeps a category's strongest finding; between findings of
// the same weight (a saturated z-score) the larger count, so the signal
// says the same number as the explanation.
func (inc *incident) setSignal(c Category, lo float64, sig Signal, n int) {
	if old, ok := inc.lo[c]; ok && (lo < old || (lo == old && n <= inc.sigN[c])) {
		return
	}
	inc.lo[c], inc.sigs[c], inc.sigN[c] = lo, sig, n
}

func (e *Engine) emitIncident(user string, inc *incident) {
	main, best := Category(""), math.Inf(-1)
	var cats []Category
	var sigs []Signal
	for _, c := range []Category{CatBrowsing, CatVolume, CatBulk} {
		lo, ok := inc.lo[c]
		if !ok {
			continue
		}
		cats = append(cats, c)
		sigs = append(sigs, inc.sigs[c])
		if lo > best {
			main, best = c, lo
		}
	}
	// The findings of a day overlap: an export of strangers' records is
	// also a browsing burst and a volume spike, and a shift of strangers
	// holds an hour of several. The incident is named for the finding
	// that covers most of the patients it lists, whatever scored
	// highest: bulk for the patients read in bulk (a day with both an
	// export and charts opened one by one makes two alerts, the
	// export's under its own key), volume rather than browsing when the
	// worst hour holds less than half of the others.
	patients, bulkPatients := inc.patients, []string(nil)
	if _, ok := inc.lo[CatBulk]; ok {
		if u := e.users[user]; u != nil {
			patients, bulkPatients = splitFlag(inc.patients, u.day.patients, flagBulk)
		}
	}
	if len(patients) == 0 {
		patients, bulkPatients, main = bulkPatients, nil, CatBulk
	} else if main == CatBulk {
		main = CatBrowsing
		if lo, ok := inc.lo[CatBrowsing]; !ok || inc.lo[CatVolume] > lo {
			main = CatVolume
		}
	}
	if _, ok := inc.lo[CatVolume]; ok && main == CatBrowsing && 2*inc.unexplained < len(patients) {
		main = CatVolume
	}
	if _, ok := inc.lo[main]; !ok {
		main = CatBulk // bulk alone, its patients not in the day's window (overflow)
	}
	// The findings of a day are views of one behaviour: the score is the
	// strongest, not their sum.
	alert := func(key string, c Category, ps []string) Alert {
		a := Alert{
			Key:         key,
			User:        user,
			Patients:    slices.Clone(ps),
			Category:    c,
			Categories:  cats,
			Score:       logistic(best),
			Explanation: incidentExplanation(inc),
			First:       inc.first,
			Last:        inc.last,
			Evidence:    Evidence{Signals: sigs},
		}
		for _, x := range inc.accesses {
			if bulkPatients == nil || slices.Contains(ps, x.Patient) {
				a.Evidence.Accesses = append(a.Evidence.Accesses, x)
			}
		}
		if inc.unexplained > 0 {
			a.Evidence.Missing = []string{"care relation for " + fmt.Sprint(inc.unexplained) + " patients"}
		}
		return a
	}
	day := inc.day.Format("2006-01-02")
	e.upsert(alert(e.key(user, "", "behaviour", day), main, patients))
	if len(bulkPatients) > 0 {
		e.upsert(alert(e.key(user, "", "behaviour", day, "bulk"), CatBulk, bulkPatients))
	}
}

// splitFlag splits patients into those whose flags lack f and those
// whose flags hold it.
func splitFlag(patients []string, flags map[string]uint8, f uint8) (without, with []string) {
	for _, p := range patients {
		if flags[p]&f != 0 {
			with = append(with, p)
		} else {
			without = append(without, p)
		}
	}
	return without, with
}

func incidentExplanation(inc *incident) string {
	var parts []string
	if inc.hourMax > 0 {
		parts = append(parts, fmt.Sprintf("opened %d patients' records in one hour (usually %.0f)", inc.hourMax, inc.hourUsual))
	}
	if inc.dayN > 0 {
		parts = append(parts, fmt.Sprintf("opened %d patients' records in the day (usually %.0f)", inc.dayN, inc.dayUsual))
	}
	if inc.unexplained > 0 {
		parts = append(parts, fmt.Sprintf("%d patients in one hour have no care team, encounter, order or billing relation with the user", inc.unexplained))
	}
	if inc.glass > 0 {
		parts = append(parts, fmt.Sprintf("%d patients opened under break-the-glass in one hour", inc.glass))
	}
	if inc.offHours > 0 {
		parts = append(parts, fmt.Sprintf("%d of them outside the user's rostered hours", inc.offHours))
	}
	if inc.bulk > 0 {
		parts = append(parts, fmt.Sprintf("read %d patients' records in bulk or by export", inc.bulk))
	}
	return strings.Join(parts, "; ")
}

// closeHour feeds the open hour of every active user into the
// baselines, scores it against them, and resets it.
func (e *Engine) closeHour() {
	names, active := e.closing(func(u *userState) bool { return u.active }, func(g *group, u *userState) {
		g.hour.add(float64(u.hour.n))
		g.browse.add(float64(u.hour.unexplained))
	}, func(g *group) {
		g.bHour = e.baselineOf(g.hour)
		g.bBrowse = e.baselineOf(g.browse)
	})
	for i, u := range active {
		e.scoreHour(names[i], u, true)
		u.ownHour.add(float64(u.hour.n))
		u.bHour = e.baselineOf(u.ownHour)
		u.hour.reset()
		u.active = false
		if inc := u.inc; inc != nil {
			// A burst does not stop at the hour: the unexplained patients
			// of the hour after a finding belong to the same incident.
			if inc.hitHour.Equal(e.hourStart) {
				inc.listHour &= flagUnexplained
			} else {
				inc.listHour = 0
			}
		}
	}
}

// closing selects the users whose window closes (active), adds each
// one's window to their peer groups (feed), and recomputes the
// baselines of the groups fed (rebase). It returns the users' names and
// states, in the same order.
func (e *Engine) closing(active func(*userState) bool, feed func(*group, *userState), rebase func(*group)) ([]string, []*userState) {
	var names []string
	var users []*userState
	for name, u := range e.users {
		if active(u) {
			names = append(names, name)
			users = append(users, u)
		}
	}
	touched := map[string]*group{}
	for _, u := range users {
		for _, k := range u.groups {
			g := e.groups[k]
			if g == nil {
				g = newGroup()
				e.groups[k] = g
			}
			feed(g, u)
			touched[k] = g
		}
	}
	for _, g := range touched {
		rebase(g)
	}
	return names, users
}

// closeDay does the same for the day windows.
func (e *Engine) closeDay() {
	names, active := e.closing(func(u *userState) bool { return u.day.n > 0 },
		func(g *group, u *userState) { g.day.add(float64(u.day.n)) },
		func(g *group) { g.bDay = e.baselineOf(g.day) })
	for i, u := range active {
		e.scoreDay(names[i], u)
		u.ownDay.add(float64(u.day.n))
		u.bDay = e.baselineOf(u.ownDay)
		u.ownBulk.add(float64(u.day.bulk))
		u.bBulk = e.baselineOf(u.ownBulk)
		u.day.reset()
		u.inc = nil
	}
}
