package scenario

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor"
)

// TruthRow is one misuse pair of the ground truth: a user's access to a
// patient that nothing explains, or an attack by an account or from an
// address.
type TruthRow struct {
	User     string // "Practitioner/<id>", or "" for an attack on many accounts
	Patient  string // "Patient/<id>", or "" for a user-level or attack row
	Category monitor.Category
	Address  string // the source address of an attack, else ""
}

// incident is one injected misuse, planned when the scenario is built
// and played on its day.
type incident struct {
	cat      monitor.Category
	day      int
	at       time.Time
	user     int   // practitioner, or -1
	patients []int // targets
	addr     string
	logins   []string // tried account names (stuffing, spraying)
	ghosts   []string // ids that do not exist (enumeration)
	count    int
}

// Categories lists the injected misuse categories in the order of the
// evaluation table.
var Categories = []monitor.Category{
	monitor.CatFamily, monitor.CatNeighbour, monitor.CatCoworker, monitor.CatWorkforce,
	monitor.CatSelf, monitor.CatVIP, monitor.CatOffHours, monitor.CatVolume, monitor.CatBulk,
	monitor.CatBrowsing, monitor.CatCredential, monitor.CatMFA, monitor.CatToken,
	monitor.CatEnumeration, monitor.CatDenied, monitor.CatSession,
}

// UserLevel reports whether a category is about a user's behaviour or an
// attack rather than about one (user, patient) pair.
func UserLevel(c monitor.Category) bool {
	switch c {
	case monitor.CatVolume, monitor.CatBulk, monitor.CatBrowsing:
		return true
	}
	return Attack(c)
}

// Attack reports whether a category is an attack on accounts or
// sessions (matched by account or address, not by patient).
func Attack(c monitor.Category) bool {
	switch c {
	case monitor.CatCredential, monitor.CatMFA, monitor.CatToken, monitor.CatEnumeration,
		monitor.CatDenied, monitor.CatSession:
		return true
	}
	return false
}

func externalAddress(r *rand.Rand) string {
	return pick(r, []string{"203.0.113.", "198.51.100.", "192.0.2."}) + fmt.Sprint(1+r.IntN(250))
}

// planIncidents injects Incidents misuses of every category, in the last
// two thirds of the log (the first third is the users' history).
func (w *world) planIncidents(r *rand.Rand) []incident {
	var out []incident
	first := w.o.Days / 3
	used := map[[2]int]bool{}
	clinicians := append(append([]int(nil), w.byRole[roleNurse]...), w.byRole[roleDoctor]...)
	// target finds a patient unrelated to u.
	target := func(u int) int {
		for range 1000 {
			p := r.IntN(len(w.pats))
			if !used[[2]int{u, p}] && w.pats[p].prac != u && !w.related(u, p) {
				used[[2]int{u, p}] = true
				return p
			}
		}
		return -1
	}
	day := func() int { return first + r.IntN(w.o.Days-first) }
	// during picks a time inside one of u's shifts on or after day d.
	during := func(u, d int) (int, time.Time, bool) {
		for k := range 14 {
			dd := d + k
			if dd >= w.o.Days {
				dd = d - (k - (w.o.Days - d)) - 1 // past the end: look back
			}
			if ws := w.shiftWindows(u, dd); len(ws) > 0 && dd >= first && dd < w.o.Days-1 {
				span := ws[0][1].Sub(ws[0][0]) - time.Hour
				return dd, ws[0][0].Add(30*time.Minute + time.Duration(r.Int64N(int64(span)))), true
			}
		}
		return 0, time.Time{}, false
	}
	add := func(in incident) {
		if in.at.IsZero() {
			var ok bool
			in.day, in.at, ok = during(in.user, in.day)
			if !ok {
				return
			}
		}
		in.day = w.dayOf(in.at)
		out = append(out, in)
	}
	// pairs injects Incidents accesses among candidate (user, patient)
	// pairs that nothing explains.
	pairs := func(cat monitor.Category, cands [][2]int) {
		n := 0
		for _, k := range r.Perm(len(cands)) {
			c := cands[k]
			if n == w.o.Incidents {
				break
			}
			if used[c] || w.related(c[0], c[1]) {
				continue
			}
			used[c] = true
			add(incident{cat: cat, day: day(), user: c[0], patients: []int{c[1]}})
			n++
		}
	}
	home := map[string][]int{}   // surname, street line and city
	street := map[string][]int{} // street name and postal code
	for u, p := range w.pracs {
		home[p.family+"|"+p.addr.line+"|"+p.addr.city] = append(home[p.family+"|"+p.addr.line+"|"+p.addr.city], u)
		k := p.addr.line[indexSpace(p.addr.line):] + "|" + p.addr.postal
		street[k] = append(street[k], u)
	}
	var family, neighbour, coworker, workforce, self, vip [][2]int
	for p, pt := range w.pats {
		if pt.prac >= 0 {
			c := pt.prac
			self = append(self, [2]int{c, p})
			for _, u := range w.byOrg[w.pracs[c].org] {
				if u != c {
					coworker = append(coworker, [2]int{u, p})
				}
			}
			for range 3 {
				u := r.IntN(len(w.pracs))
				if w.pracs[u].dept != w.pracs[c].dept && w.pracs[u].family != pt.family {
					workforce = append(workforce, [2]int{u, p})
				}
			}
			continue
		}
		for _, u := range home[pt.family+"|"+pt.addr.line+"|"+pt.addr.city] {
			family = append(family, [2]int{u, p})
		}
		for _, u := range street[pt.addr.line[indexSpace(pt.addr.line):]+"|"+pt.addr.postal] {
			if w.pracs[u].family != pt.family && w.pracs[u].addr.line != pt.addr.line {
				neighbour = append(neighbour, [2]int{u, p})
			}
		}
		if pt.label != "" {
			for range 3 {
				vip = append(vip, [2]int{r.IntN(len(w.pracs)), p})
			}
		}
	}
	pairs(monitor.CatFamily, family)
	pairs(monitor.CatNeighbour, neighbour)
	pairs(monitor.CatCoworker, coworker)
	pairs(monitor.CatWorkforce, workforce)
	pairs(monitor.CatSelf, self)
	pairs(monitor.CatVIP, vip)

	// Off hours: a nurse opens charts of patients on her own unit at an
	// hour she is not rostered (at least three hours from any shift).
	for range w.o.Incidents {
		for range 200 {
			u := pick(r, w.byRole[roleNurse])
			d := day()
			at := w.day(d).Add(time.Duration(r.IntN(24*60)) * time.Minute)
			if w.onShift(u, at, 3*time.Hour) || w.onShift(u, at.Add(3*time.Hour), 0) {
				continue
			}
			var ps []int
			for _, ei := range w.encByDay[d] {
				e := w.encs[ei]
				if e.org != w.pracs[u].org || at.Before(e.start) || at.After(e.end) || used[[2]int{u, e.patient}] {
					continue
				}
				mine := false
				for _, pp := range append(append([]participant(nil), e.parts...), e.team...) {
					mine = mine || pp.prac == u
				}
				if !mine {
					ps = append(ps, e.patient)
				}
			}
			if len(ps) == 0 {
				continue
			}
			ps = ps[:min(len(ps), 2+r.IntN(3))]
			for _, p := range ps {
				used[[2]int{u, p}] = true
			}
			add(incident{cat: monitor.CatOffHours, user: u, at: at, patients: ps})
			break
		}
	}
	// Volume, browsing and bulk: many unrelated patients.
	many := func(cat monitor.Category, users []int, lo, hi int) {
		for range w.o.Incidents {
			u := pick(r, users)
			n := lo + r.IntN(hi-lo+1)
			var ps []int
			for range n {
				if p := target(u); p >= 0 {
					ps = append(ps, p)
				}
			}
			add(incident{cat: cat, day: day(), user: u, patients: ps})
		}
	}
	all := make([]int, len(w.pracs))
	for i := range all {
		all[i] = i
	}
	many(monitor.CatVolume, clinicians, 25, 45)
	many(monitor.CatBrowsing, all, 12, 25)
	many(monitor.CatBulk, all, 40, 150)

	// Attacks.
	for range w.o.Incidents {
		in := incident{cat: monitor.CatCredential, user: -1, addr: externalAddress(r), day: day()}
		in.at = w.day(in.day).Add(time.Duration(r.IntN(24*60)) * time.Minute)
		if r.IntN(2) == 0 { // stuffing: many names, known and unknown, quickly
			for range 30 + r.IntN(60) {
				if r.IntN(3) == 0 {
					in.logins = append(in.logins, w.pracs[r.IntN(len(w.pracs))].login)
				} else {
					in.logins = append(in.logins, fmt.Sprintf("%s%d", pick(r, unknownLogins), r.IntN(100)))
				}
			}
			in.count = 1 // seconds between tries
		} else { // spraying: every known account once or twice, slowly
			for _, k := range r.Perm(len(w.pracs))[:min(len(w.pracs), 20+r.IntN(30))] {
				in.logins = append(in.logins, w.pracs[k].login)
			}
			in.count = 60 + r.IntN(120)
		}
		add(in)
	}
	userAttack := func(cat monitor.Category, lo, hi int) {
		for range w.o.Incidents {
			u := r.IntN(len(w.pracs))
			in := incident{cat: cat, user: u, addr: externalAddress(r), day: day(), count: lo + r.IntN(hi-lo+1)}
			if cat == monitor.CatEnumeration || cat == monitor.CatDenied || cat == monitor.CatSession {
				in.addr = "" // from the user's own workstation, or a second one (session)
			}
			if cat == monitor.CatEnumeration {
				for range in.count {
					in.ghosts = append(in.ghosts, fmt.Sprintf("pt%d", len(w.pats)+1+r.IntN(10*len(w.pats))))
				}
			}
			if cat == monitor.CatSession {
				in.addr = externalAddress(r)
			}
			add(in)
		}
	}
	userAttack(monitor.CatMFA, 5, 12)
	userAttack(monitor.CatToken, 8, 30)
	userAttack(monitor.CatEnumeration, 20, 60)
	userAttack(monitor.CatDenied, 10, 30)
	userAttack(monitor.CatSession, 3, 8)
	for i := range out {
		if out[i].cat == monitor.CatEnumeration || out[i].cat == monitor.CatDenied {
			out[i].addr = pick(r, w.pracs[out[i].user].stations)
		}
	}
	return out
}

// truth lists the ground-truth rows of the incidents.
func (w *world) truth(incs []incident) []TruthRow {
	var out []TruthRow
	for _, in := range incs {
		user := ""
		if in.user >= 0 {
			user = "Practitioner/" + w.pracs[in.user].id
		}
		if Attack(in.cat) {
			out = append(out, TruthRow{User: user, Category: in.cat, Address: in.addr})
			continue
		}
		for _, p := range in.patients {
			out = append(out, TruthRow{User: user, Patient: ident.PatientPrefix + w.pats[p].id, Category: in.cat})
		}
	}
	return out
}
